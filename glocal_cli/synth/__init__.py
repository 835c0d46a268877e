"""SynthPeople internals: the renderer and its parts.

* :mod:`~glocal_cli.data.geometry`: body parts and the generalised-cylinder primitive
  (pixel <-> body-surface coordinates);
* :mod:`~glocal_cli.synth.appearance`: per-identity looks and surface textures;
* :mod:`~glocal_cli.synth.poses`: real annotated poses (jittered, flipped, completed) and a
  parametric fallback;
* :mod:`~glocal_cli.synth.render`: the renderer with its ground truth;
* :mod:`~glocal_cli.synth.writer`: one identity rendered and written (the parallel unit).

``--body anny`` (people on real body shapes, exact correspondence through the 3D body meshes):

* :mod:`~glocal_cli.synth.anny_mesh`: the reduced render mesh, texture coordinates, skirt and
  hair meshes;
* :mod:`~glocal_cli.synth.anny_look`: identities (body shape, skin, hair, clothes, patterns,
  logos, light, background) and the colour and class of every covered pixel;
* :mod:`~glocal_cli.synth.anny_poses`: the pose sampler, the shipped real-pose fits, framing;
* :mod:`~glocal_cli.synth.anny_people`: rendering an identity's poses as one batch, keypoints,
  pair correspondence, files.

The dataset command is :func:`glocal_cli.synth.dataset.prepare_synthetic`; correspondence from
surface maps is :mod:`glocal_cli.data.correspondence`.
"""
