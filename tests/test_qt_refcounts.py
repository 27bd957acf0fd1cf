"""Guard against a Qt binding that drops references to None/True on every call.

PySide6 6.12.0 on CPython 3.11 loses one reference to None (or True) per call of many setters;
a long session then aborts with "none_dealloc"/"bool_dealloc". pyproject excludes it; this test
fails if such a build comes back."""

import sys

import pytest


def test_qt_setters_keep_none_and_true_alive(qapp):
    from PySide6.QtCore import QRectF
    from PySide6.QtWidgets import QGraphicsRectItem, QLabel, QTreeWidget, QTreeWidgetItem

    label, rect = QLabel(), QGraphicsRectItem()
    tree = QTreeWidget()
    item = QTreeWidgetItem(tree, ["a"])
    calls = [lambda: label.setText("x"), lambda: label.setVisible(False), lambda: item.setText(0, "y"),
             lambda: rect.setRect(QRectF(0, 0, 1, 1))]
    if sys.version_info >= (3, 12):
        pytest.skip("None and True are immortal on Python >= 3.12")
    for call in calls:
        none0, true0 = sys.getrefcount(None), sys.getrefcount(True)
        for _ in range(500):
            call()
        assert sys.getrefcount(None) - none0 > -100, "the Qt binding leaks references to None"
        assert sys.getrefcount(True) - true0 > -100, "the Qt binding leaks references to True"
