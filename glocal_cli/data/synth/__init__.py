"""SynthPeople internals: the renderer and its parts.

* :mod:`~glocal_cli.data.synth.geometry`: body parts and the generalised-cylinder primitive
  (pixel <-> body-surface coordinates);
* :mod:`~glocal_cli.data.synth.appearance`: per-identity looks and surface textures;
* :mod:`~glocal_cli.data.synth.poses`: real annotated poses (jittered, flipped, completed) and a
  parametric fallback;
* :mod:`~glocal_cli.data.synth.render`: the renderer with its ground truth;
* :mod:`~glocal_cli.data.synth.writer`: one identity rendered and written (the parallel unit).

The dataset command is :func:`glocal_cli.data.synthetic.prepare_synthetic`; correspondence from
surface maps is :mod:`glocal_cli.data.correspondence`.
"""
