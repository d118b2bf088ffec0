"""Sweeps and Monte-Carlo runs on Dask's distributed scheduler (the optional extra ``resnet_sim[cluster]``).

- :mod:`~resnet_sim.cluster.sweep`: ``resnet-sim sweep SPEC.toml``, one training run (a RUNDIR) per point
  of a grid of options of ``resnet-sim train`` or a model family (``drn``, ``hopfield``, ``pcn``);
- :mod:`~resnet_sim.cluster.montecarlo`: ``resnet-sim mc NETLIST``, a trained circuit solved under seeded
  device-variability draws;
- :mod:`~resnet_sim.cluster.client`: the Dask client, on a LocalCluster or a scheduler's address.

Workers need nothing but the installed package: every input travels with the tasks, every result comes
back to the client, which writes the files. Importing this package does not import Dask (the ``resnet-sim``
command builds its parser from :mod:`~resnet_sim.cluster.commands` at every start).
"""
