"""Floor 5: the training loop, its callbacks, metrics, checkpoints and reports."""

from .callbacks import SWA, Callback, Curriculum, EarlyStopping, GradientClipping, LRSchedulerCallback, ModelCheckpoint
from .checkpoint import load_checkpoint, save_checkpoint
from .detection_metrics import MeanAveragePrecision
from .finetune import GradualUnfreezing, backbone_from_run, stage_groups
from .metrics import Accuracy, ConfusionMatrix, MeanAbsoluteError, MeanSquaredError, Metric, TopKAccuracy, get_metric
from .segmentation_metrics import MeanIoU, PixelAccuracy, SegmentationConfusionMatrix
from .summary import ModelSummary, summary
from .trainer import Trainer, TrainingError, TrainingInterrupted

__all__ = [
    "Trainer", "TrainingError", "TrainingInterrupted", "Callback", "EarlyStopping", "ModelCheckpoint",
    "LRSchedulerCallback", "GradientClipping", "SWA", "Curriculum", "save_checkpoint", "load_checkpoint",
    "Metric", "Accuracy", "TopKAccuracy", "ConfusionMatrix", "MeanSquaredError", "MeanAbsoluteError", "get_metric",
    "summary", "ModelSummary", "MeanAveragePrecision",
    "SegmentationConfusionMatrix", "MeanIoU", "PixelAccuracy", "GradualUnfreezing", "backbone_from_run", "stage_groups",
]
