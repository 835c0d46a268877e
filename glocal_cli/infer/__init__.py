"""The inference core and its front ends.

:mod:`~glocal_cli.infer.prepare` (what goes into the model: ``ModelInput``, ``collate``, ``frame_mask``),
:mod:`~glocal_cli.infer.pipeline` (``GLocalPipeline``: the Python API and ``forward_batch``, the model with
the 3D body's geometry), :mod:`~glocal_cli.infer.composite` (``compose``: everything after the model, at the
photo's size), :mod:`~glocal_cli.infer.batch` (the folder job of ``glocal transfer`` / ``glocal inpaint``),
:mod:`~glocal_cli.infer.io` (photos and poses into the frame), :mod:`~glocal_cli.infer.body3d` (fits, renders
and correspondence for the pipeline), :mod:`~glocal_cli.infer.config` (``infer.*``). ``glocal serve``
(:mod:`glocal_cli.serve`) runs the same core.
"""
