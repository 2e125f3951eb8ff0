"""The process a run lives in: devices, the process group and the CPU allocator.

- :mod:`~moeheads.runtime.distributed`: device choice, ``torchrun`` process groups;
- :mod:`~moeheads.runtime.gather`: all-gather across processes with gradient (global
  batches for losses and routers' batch statistics);
- :mod:`~moeheads.runtime.sync_batchnorm`: BatchNorm with statistics over all processes
  (pretraining and the detection protocol);
- :mod:`~moeheads.runtime.allocator`: glibc malloc tuning for large CPU tensors, applied
  by the ``moeheads`` command (never implicitly by the library).
"""
