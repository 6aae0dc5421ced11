"""InputWatch: which inputs went quiet, for how long, and when they are back."""

from gpt4scene_ros.common.input_watch import InputWatch

TOPICS = {'color': '/camera/color/image_raw', 'camera_info': '/camera/color/camera_info', 'odometry': '/odom'}


def test_inputs_that_never_arrive_are_named_after_the_timeout():
    watch = InputWatch(TOPICS, timeout_s=3.0, now_s=100.0)
    assert watch.quiet(102.9) == []
    watch.seen('color', 101.0)
    watch.seen('odometry', 101.0)
    quiet = watch.quiet(103.5)
    assert [q.name for q in quiet] == ['camera_info'] and quiet[0].never
    assert '/camera/color/camera_info' in quiet[0].describe() and 'nothing received for 3.5 s' in quiet[0].describe()
    assert watch.ages(103.5) == {'color': 2.5, 'camera_info': None, 'odometry': 2.5}


def test_an_input_that_stops_is_named_and_clears_when_it_returns():
    watch = InputWatch(TOPICS, timeout_s=2.0, now_s=0.0)
    for t in (0.5, 1.0, 1.5):
        for name in TOPICS:
            watch.seen(name, t)
    assert watch.quiet(3.0) == []
    watch.seen('color', 3.0)
    watch.seen('camera_info', 3.0)
    quiet = watch.quiet(4.0)
    assert [q.name for q in quiet] == ['odometry'] and not quiet[0].never and abs(quiet[0].quiet_s - 2.5) < 1e-9
    assert 'no message for 2.5 s' in quiet[0].describe()
    watch.seen('odometry', 4.1)
    assert watch.quiet(4.2) == []
