"""The one curve smoother of the lessons' training plots (lessons 03 and 04)."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from facestyle_utils.plotting import moving_average, plot_smoothed  # noqa: E402


def test_moving_average_keeps_only_full_windows():
    assert moving_average([1.0, 2.0, 3.0, 4.0], 2) == pytest.approx([1.5, 2.5, 3.5])
    assert moving_average([5.0, 1.0], 1) == [5.0, 1.0]
    assert moving_average([1.0, 2.0, 6.0], 3) == pytest.approx([3.0])
    for window in (0, 4):
        with pytest.raises(ValueError, match="window must be between 1 and the number of values"):
            moving_average([1.0, 2.0, 3.0], window)


def test_plot_smoothed_draws_the_raw_curve_and_its_average_at_the_right_steps():
    figure, ax = plt.subplots()
    steps, values = list(range(1, 41)), [float(v % 4) for v in range(40)]
    window = plot_smoothed(ax, steps, values)
    raw, smooth = ax.get_lines()
    assert window == 2 and list(raw.get_xdata()) == steps
    assert list(smooth.get_xdata()) == steps[1:]
    assert list(smooth.get_ydata()) == pytest.approx([0.5, 1.5, 2.5, 1.5] * 9 + [0.5, 1.5, 2.5])
    assert smooth.get_label() == "moving average (2)"
    assert plot_smoothed(ax, [1, 2], [3.0, 1.0], label="style") == 1
    assert ax.get_lines()[-1].get_label() == "style, moving average (1)"
    plt.close(figure)
