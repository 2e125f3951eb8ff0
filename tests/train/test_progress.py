"""The epoch summary uses names people read, not the metrics file's keys."""

from moeheads.train.progress import epoch_line, metric_label


def test_epoch_line_names_and_formats() -> None:
    line = epoch_line(2, 10, {"loss": 3.2104, "inv": 2.9, "inv/weighted": 2.9,
                              "aux/importance": 0.1, "images_per_s": 1830.4,
                              "knn_top1": 0.4123, "cca_mean": 0.52,
                              "feature_images_per_s": 9100.0})
    assert line == ("epoch 2/10  loss 3.21 · inv loss 2.9 · train img/s 1,830 · "
                    "kNN top-1 41.2% · mean CCA 0.52 · probe img/s 9,100")
    assert "_" not in line and "/weighted" not in line


def test_labels() -> None:
    assert metric_label("nn1_top1") == "1-NN top-1"
    assert metric_label("aux/load_balance") == "aux load balance"
