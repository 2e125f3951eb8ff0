"""Detection transfer: Faster R-CNN R50-C4 on a pretrained ResNet, scored with VOC AP.

- :mod:`~moeheads.eval.detection.model` and :mod:`~moeheads.eval.detection.detector`:
  the C4 detector from torchvision's parts;
- :mod:`~moeheads.eval.detection.train`: fine-tuning with a resumable checkpoint, on one
  process or split over several (torchrun);
- :mod:`~moeheads.eval.detection.sampling`: per-image random draws that do not depend on
  how a batch is split over processes;
- :mod:`~moeheads.eval.detection.inference`: detections of a test set (shared over
  processes, gathered on rank 0);
- :mod:`~moeheads.eval.detection.voc_eval`: the VOC2007 11-point AP at IoU .50:.95;
- :mod:`~moeheads.eval.detection.coco_check`: COCO-style AP as a cross-check;
- :mod:`~moeheads.eval.detection.protocol` and :mod:`~moeheads.eval.detection.stage`:
  the ``detection`` protocol and its evaluation stage.
"""
