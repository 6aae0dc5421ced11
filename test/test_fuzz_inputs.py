"""Property-based fuzz tests (hypothesis) of what a robot feeds the core: pose streams, map files, model answers
and scene queries.

Each property names its example count (``max_examples``); test/FUZZING.md lists them. No example database is
kept, and hypothesis' own cache goes to a temporary folder, so nothing is written into the repository.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import math
import pickle
import re
import signal
import struct
import time
import zipfile

import numpy as np
import pytest
from conftest import REPO_ROOT  # noqa: E402
from fuzzing import FUZZ
from hypothesis import assume, event, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scene_fixtures import INSTANCES, make_snapshot  # noqa: E402

from gpt4scene_ros.common.frames import CameraIntrinsics  # noqa: E402
from gpt4scene_ros.common.pose_buffer import BACKWARDS_TOLERANCE_S, PoseBuffer, PoseLookupError  # noqa: E402
from gpt4scene_ros.common.settings.mapping import MappingConfig  # noqa: E402
from gpt4scene_ros.common.settings.query import QUERY_TASKS, QueryConfig  # noqa: E402
from gpt4scene_ros.mapping.map_file import MAP_FILE_FORMAT, MAP_FILE_VERSION, MapFileError, load_map, save_map  # noqa: E402
from gpt4scene_ros.mapping.tsdf import SceneMap  # noqa: E402
from gpt4scene_ros.objects.tags import object_tag, parse_object_ids  # noqa: E402
from gpt4scene_ros.query.backends.base import VlmBackend, VlmError  # noqa: E402
from gpt4scene_ros.query.prompts import PromptTemplates  # noqa: E402
from gpt4scene_ros.query.scene_query import ErrorCode, QueryRequest, QueryResult, answer_query  # noqa: E402


@contextlib.contextmanager
def time_bound(seconds: float, what: str):
    """Fail when the body runs longer than ``seconds``: interrupted by SIGALRM where Python code runs, measured
    afterwards where C code (a regex, Open3D) holds the interpreter."""

    def expire(signum, frame):
        raise AssertionError(f'{what} took longer than {seconds} s')

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    started = time.monotonic()
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert time.monotonic() - started < seconds, f'{what} took longer than {seconds} s'


# ---------------------------------------------------------------------------------------------------------------
# PoseBuffer
# ---------------------------------------------------------------------------------------------------------------


def rotation(q) -> np.ndarray:
    """Rotation matrix of a (not necessarily unit) quaternion (x, y, z, w): the test's own formula."""
    x, y, z, w = np.asarray(q, float) / np.linalg.norm(q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def angle_between(Ra: np.ndarray, Rb: np.ndarray) -> float:
    """Geodesic angle of Ra^T Rb (atan2 form: accurate near 0 and pi)."""
    R = Ra.T @ Rb
    sine = np.linalg.norm([R[2, 1] - R[1, 2], R[0, 2] - R[2, 0], R[1, 0] - R[0, 1]]) / 2.0
    return math.atan2(sine, (np.trace(R) - 1.0) / 2.0)


def rigid_error(T) -> float:
    """How far a 4x4 array is from a rigid transform (inf when it is not a finite 4x4)."""
    try:
        T = np.asarray(T, float)
    except ValueError:  # ragged nested lists
        return math.inf
    if T.shape != (4, 4) or not np.all(np.isfinite(T)):
        return math.inf
    R = T[:3, :3]
    with np.errstate(all='ignore'):
        error = max(
            np.max(np.abs(T[3] - (0, 0, 0, 1))), np.max(np.abs(R.T @ R - np.eye(3))), abs(np.linalg.det(R) - 1.0)
        )
    return float(error) if np.isfinite(error) else math.inf


unit_quaternions = arrays(np.float64, 4, elements=st.floats(-1.0, 1.0)).map(
    lambda q: q if np.linalg.norm(q) > 1e-3 else np.array([0.0, 0.0, 0.0, 1.0])
)
translations = arrays(np.float64, 3, elements=st.floats(-1e3, 1e3))


@st.composite
def rigid_poses(draw) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3] = rotation(draw(unit_quaternions))
    T[:3, 3] = draw(translations)
    return T


@st.composite
def bad_poses(draw):
    """Anything else an odometry source might hand over: scaled, mirrored, NaN, random, wrong shapes, ragged."""
    T = draw(rigid_poses())
    kind = draw(st.sampled_from(['scaled', 'mirrored', 'nan', 'inf', 'bottom', 'random', 'shape', 'ragged']))
    if kind == 'scaled':
        T[:3, :3] *= draw(st.floats(1.01, 1e6) | st.floats(0.0, 0.99))
    elif kind == 'mirrored':
        T[:3, 0] *= -1.0
    elif kind in ('nan', 'inf'):
        T[draw(st.integers(0, 3)), draw(st.integers(0, 3))] = math.nan if kind == 'nan' else -math.inf
    elif kind == 'bottom':
        T[3, draw(st.integers(0, 3))] += draw(st.sampled_from([-1.0, 0.5, 2.0, 1e9]))
    elif kind == 'random':
        return draw(arrays(np.float64, (4, 4), elements=st.floats(allow_nan=True, allow_infinity=True)))
    elif kind == 'shape':
        return draw(
            arrays(
                np.float64,
                st.sampled_from([(), (4,), (3, 3), (4, 3), (3, 4), (4, 4, 1), (0, 4), (16,)]),
                elements=st.floats(-2, 2),
            )
        )
    else:
        return [[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]]
    return T


@st.composite
def nearly_rigid_poses(draw) -> np.ndarray:
    """A rigid pose with noise well inside the accepted tolerance (1e-3), as real odometry has."""
    T = draw(rigid_poses())
    T[:3, :3] += draw(arrays(np.float64, (3, 3), elements=st.floats(-1e-4, 1e-4)))
    return T


stamps = st.one_of(
    st.floats(-1e4, 1e4),
    st.floats(1.6e9, 1.8e9),  # sim time and epoch seconds
    st.floats(allow_nan=True, allow_infinity=True),  # anything, NaN and inf included
    st.integers(-(10**400), 10**400),
    st.integers(-(2**63), 2**63),  # ints beyond a float's range
    st.sampled_from([0, -0.0, 5e-324, 1e308, -1e308, np.float32(1.5), np.int64(7), np.float64(np.nan)]),
    st.sampled_from([True, None, '1.0', b'2', [3.0]]),  # not numbers
)

operations = st.lists(
    st.one_of(
        st.tuples(st.just('add'), stamps, st.one_of(rigid_poses(), nearly_rigid_poses(), bad_poses())),
        st.tuples(st.just('lookup'), stamps),
    ),
    max_size=30,
)


def finite_number(value) -> bool:
    """The test's notion of a stamp PoseBuffer must accept: a real number (not a bool) that is a finite float."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


def state(buffer: PoseBuffer):
    return len(buffer), buffer.oldest_stamp_s, buffer.newest_stamp_s


@settings(FUZZ, max_examples=300)
@given(
    max_age_s=st.sampled_from([10.0, 0.5, 1e-6, 1e9]),
    max_gap_s=st.sampled_from([0.25, 1e-9, 1e6]),
    max_extrapolation_s=st.sampled_from([0.0, 0.05, 1e6]),
    ops=operations,
)
def test_pose_buffer_raises_only_documented_errors(max_age_s, max_gap_s, max_extrapolation_s, ops):
    """Random add/lookup sequences: add gives 'added'/'reset' or ValueError (buffer unchanged); lookup gives a rigid
    4x4, a PoseLookupError whose reason fits the buffer, or ValueError for a stamp that is no finite number."""
    buffer = PoseBuffer(max_age_s, max_gap_s, max_extrapolation_s)
    for op in ops:
        before = state(buffer)
        if op[0] == 'add':
            _, stamp, T = op
            error = rigid_error(T)
            assume(error < 1e-3 - 1e-9 or error > 1e-3 + 1e-9)  # no coin-flips at the tolerance's edge
            valid = finite_number(stamp) and error < 1e-3
            try:
                outcome = buffer.add(stamp, T)
            except ValueError:
                assert not valid, f'add({stamp!r}) refused a valid pose'
                assert state(buffer) == before, 'a refused pose changed the buffer'
                continue
            assert valid, f'add({stamp!r}) accepted a pose {error} from rigid'
            assert outcome in ('added', 'reset')
            stamp = float(stamp)
            size, oldest, newest = state(buffer)
            assert size >= 1 and oldest <= newest and newest >= stamp
            assert oldest >= newest - max_age_s, 'poses older than max_age_s are pruned'
            if outcome == 'reset':
                assert size == 1 and before[2] is not None and stamp < before[2] - BACKWARDS_TOLERANCE_S
            if stamp >= newest - max_age_s:
                np.testing.assert_array_equal(buffer.lookup(stamp), np.asarray(T, float))
        else:
            _, stamp = op
            try:
                T = buffer.lookup(stamp)
            except PoseLookupError as error:
                size, oldest, newest = before
                s = float(stamp)
                expected = (
                    'empty'
                    if size == 0
                    else 'before_buffer'
                    if s < oldest
                    else 'after_buffer'
                    if s - newest > max_extrapolation_s
                    else 'gap'
                )
                assert error.reason == expected and str(error)
            except ValueError:
                assert not finite_number(stamp), f'lookup({stamp!r}) refused a finite stamp'
            else:
                assert finite_number(stamp) and T.shape == (4, 4) and rigid_error(T) < 1e-3
            assert state(buffer) == before, 'a lookup changed the buffer'


@st.composite
def pose_tracks(draw):
    """Increasing stamps (some gaps wider than max_gap_s) with rigid poses, and stamps to look up."""
    max_gap_s = draw(st.sampled_from([0.05, 0.25, 2.0]))
    start = draw(st.floats(-1e5, 1e5) | st.floats(1.6e9, 1.8e9))
    steps = draw(st.lists(st.floats(1e-4, 3.0 * max_gap_s), min_size=1, max_size=12))
    track = [start]
    for step in steps:
        assume(track[-1] + step > track[-1])
        track.append(track[-1] + step)
    poses = [draw(rigid_poses()) for _ in track]
    extrapolation = draw(st.sampled_from([0.0, 0.1]))
    lookups = draw(
        st.lists(st.floats(track[0] - 1.0, track[-1] + 1.0) | st.sampled_from(track), min_size=1, max_size=10)
    )
    return max_gap_s, extrapolation, track, poses, lookups


@settings(FUZZ, max_examples=300)
@given(pose_tracks(), st.randoms(use_true_random=False))
def test_pose_buffer_lookups_interpolate_on_the_geodesic(case, random):
    """A lookup between two poses no more than max_gap_s apart is rigid, its translation the linear interpolation
    and its rotation on the short arc between them at the stamp's fraction; other stamps fail with the right reason.
    Arrival order is shuffled within BACKWARDS_TOLERANCE_S, which must not matter."""
    max_gap_s, extrapolation, track, poses, lookups = case
    buffer = PoseBuffer(max_age_s=1e12, max_gap_s=max_gap_s, max_extrapolation_s=extrapolation)
    order, k = list(range(len(track))), 0
    while k < len(order) - 1:  # swap some neighbours closer than the out-of-order tolerance
        if track[k + 1] - track[k] < BACKWARDS_TOLERANCE_S / 2 and random.random() < 0.5:
            order[k], order[k + 1] = k + 1, k
            k += 1
        k += 1
    for k in order:
        assert buffer.add(track[k], poses[k]) == 'added'
    assert len(buffer) == len(track)
    for stamp in lookups:
        if stamp < track[0]:
            with pytest.raises(PoseLookupError) as raised:
                buffer.lookup(stamp)
            assert raised.value.reason == 'before_buffer'
            continue
        if stamp >= track[-1]:
            if stamp - track[-1] <= extrapolation:
                np.testing.assert_array_equal(buffer.lookup(stamp), poses[-1])
            else:
                with pytest.raises(PoseLookupError) as raised:
                    buffer.lookup(stamp)
                assert raised.value.reason == 'after_buffer'
            continue
        index = max(k for k, t in enumerate(track) if t <= stamp)
        if track[index] == stamp:
            np.testing.assert_array_equal(buffer.lookup(stamp), poses[index])
            continue
        t0, t1 = track[index], track[index + 1]
        if t1 - t0 > max_gap_s:
            with pytest.raises(PoseLookupError) as raised:
                buffer.lookup(stamp)
            assert raised.value.reason == 'gap'
            continue
        T = buffer.lookup(stamp)
        alpha = (stamp - t0) / (t1 - t0)
        T0, T1 = poses[index], poses[index + 1]
        assert rigid_error(T) < 1e-9, 'an interpolated pose is rigid'
        np.testing.assert_allclose(T[:3, 3], (1 - alpha) * T0[:3, 3] + alpha * T1[:3, 3], rtol=0, atol=1e-9)
        full = angle_between(T0[:3, :3], T1[:3, :3])
        to_start, to_end = angle_between(T0[:3, :3], T[:3, :3]), angle_between(T[:3, :3], T1[:3, :3])
        assert to_start + to_end == pytest.approx(full, abs=1e-6), 'on the geodesic between the two rotations'
        assert to_start == pytest.approx(alpha * full, abs=1e-4), "at the stamp's fraction of the arc"


def test_pose_buffer_refuses_settings_and_stamps_beyond_a_float():
    """Found by fuzzing: ints too large for a float raised OverflowError instead of ValueError."""
    with pytest.raises(ValueError, match='max_age_s'):
        PoseBuffer(max_age_s=10**400)
    buffer = PoseBuffer()
    for stamp in (10**400, -(10**400)):
        with pytest.raises(ValueError, match='finite'):
            buffer.add(stamp, np.eye(4))
        with pytest.raises(ValueError, match='finite'):
            buffer.lookup(stamp)
    assert len(buffer) == 0


# ---------------------------------------------------------------------------------------------------------------
# Map files
# ---------------------------------------------------------------------------------------------------------------

MAP_CONFIG = MappingConfig(
    device='CPU:0', voxel_size_m=0.04, block_resolution=4, initial_block_count=200, weight_threshold=1.0
)
WALL_INTRINSICS = CameraIntrinsics(32, 24, 25.0, 25.0, 15.5, 11.5)
FILE_ENTRIES = (
    'format',
    'version',
    'voxel_size_m',
    'block_resolution',
    'truncation_voxels',
    'frames_integrated',
    'metadata',
    'block_keys',
    'tsdf',
    'weight',
    'color',
)
ATTRIBUTES = ('tsdf', 'weight', 'color')
LOAD_LIMIT_S = 20.0


def wall_map(distance_m: float, frames: int) -> SceneMap:
    """A map of a flat wall ``distance_m`` in front of the camera, seen ``frames`` times."""
    scene_map = SceneMap(MAP_CONFIG)
    color = np.full((24, 32, 3), (90, 140, 200), np.uint8)
    depth = np.full((24, 32), distance_m, np.float32)
    for k in range(frames):
        T = np.eye(4)
        T[0, 3] = 0.01 * k
        assert scene_map.integrate(color, depth, WALL_INTRINSICS, T).integrated
    return scene_map


def npz_bytes(entries: dict) -> bytes:
    """A .npz written member by member (np.savez would take an entry named 'file' or 'allow_pickle' as its own
    argument); object arrays are pickled into it as np.save(allow_pickle=True) would."""
    stream = io.BytesIO()
    with zipfile.ZipFile(stream, 'w', zipfile.ZIP_STORED) as archive:
        for name, value in entries.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, np.asanyarray(value), allow_pickle=True)
            archive.writestr(f'{name}.npy', member.getvalue())
    return stream.getvalue()


class MapFiles:
    """A saved map file (its bytes and arrays) and a different map that fuzzed files are loaded into."""

    METADATA = {'frame_id': 'map', 'T_map_world': np.eye(4).tolist()}

    def __init__(self, folder):
        self.good_path = folder / 'good.npz'
        source = wall_map(1.0, frames=2)
        save_map(source, self.good_path, metadata=self.METADATA, arrays={'votes': np.arange(4, dtype=np.int64)})
        self.good_blocks, self.good_frames = source.num_blocks, source.frames_integrated
        self.good_bytes = self.good_path.read_bytes()
        with np.load(self.good_path) as data:
            self.good_arrays = {name: data[name] for name in data.files}
        self.target = wall_map(0.6, frames=3)
        self.target_path = folder / 'target.npz'
        save_map(self.target, self.target_path)
        self.before = (self.target.num_blocks, self.target.frames_integrated)
        assert self.before != (self.good_blocks, self.good_frames) and self.good_blocks > 2
        self.fuzzed = folder / 'fuzzed.npz'

    def arrays(self) -> dict:
        return {name: value.copy() for name, value in self.good_arrays.items()}

    def load(self, content, exact: bool = True):
        """Load ``content`` (bytes, or a dict of arrays) into the target map: the MapFileError, or what load
        returned. A refusal must leave the target as it was; a load that succeeded (and then holds the good file's
        blocks and, with ``exact``, its frame count) or crashed is undone."""
        self.fuzzed.write_bytes(content if isinstance(content, bytes) else npz_bytes(content))
        try:
            with time_bound(LOAD_LIMIT_S, 'SceneMap.load'):
                loaded = load_map(self.target, self.fuzzed, arrays=True)
        except MapFileError as error:
            assert str(error)
            changed = self.restore()
            assert not changed, f'a refused file changed the map to {changed}: {error}'
            return error
        except BaseException:
            self.restore()
            raise
        changed = self.restore()
        assert changed is not None and changed[0] == self.good_blocks, 'a loaded file replaced the map'
        assert not exact or changed[1] == self.good_frames
        return loaded

    def restore(self):
        """Put the target map back as it was; return what it was found as, or None when it was unchanged."""
        found = (self.target.num_blocks, self.target.frames_integrated)
        if found == self.before:
            return None
        load_map(self.target, self.target_path)
        return found


@pytest.fixture(scope='module')
def map_files(tmp_path_factory):
    return MapFiles(tmp_path_factory.mktemp('fuzzed_maps'))


def test_the_unmodified_file_loads(map_files):
    """The baseline the properties below mutate: the saved file itself loads, with its metadata and arrays."""
    metadata, extra = map_files.load(map_files.good_bytes)
    assert metadata == MapFiles.METADATA and list(extra) == ['votes']
    assert map_files.load(map_files.arrays())[0] == MapFiles.METADATA


@settings(FUZZ, max_examples=200)
@given(
    st.one_of(
        st.binary(max_size=2048),
        st.binary(max_size=1024).map(lambda b: b'PK\x03\x04' + b),  # a zip's local header
        st.binary(max_size=1024).map(lambda b: b'PK\x05\x06' + b),  # an empty zip's end record
        st.binary(max_size=1024).map(lambda b: b'\x93NUMPY\x01\x00' + b),  # a .npy header
        st.binary(max_size=256).map(lambda b: pickle.PROTO + b'\x04' + b),
    )
)  # pickle protocol 4
def test_random_bytes_are_refused(map_files, content):
    assert isinstance(map_files.load(content), MapFileError)


@settings(FUZZ, max_examples=150)
@given(st.data())
def test_truncated_files_are_refused(map_files, data):
    length = data.draw(st.integers(0, len(map_files.good_bytes) - 1) | st.sampled_from([0, 1, 4, 22, 30]))
    assert isinstance(map_files.load(map_files.good_bytes[:length]), MapFileError)


def zip_directory(content: bytes) -> tuple[int, list]:
    """Where the zip's central directory starts, and the offset of each of its entries."""
    start = zipfile.ZipFile(io.BytesIO(content)).start_dir
    entries, position = [], start
    while content[position : position + 4] == b'PK\x01\x02':
        entries.append(position)
        names, extra, comment = struct.unpack_from('<HHH', content, position + 28)
        position += 46 + names + extra + comment
    return start, entries


@settings(FUZZ, max_examples=150)
@given(st.data())
def test_corrupted_members_are_refused_or_harmless(map_files, data):
    """Bytes flipped in the members (local headers, .npy headers, data): either refused, or (where only a field that
    nobody checks changed, a timestamp) loaded with the original blocks and metadata."""
    content = bytearray(map_files.good_bytes)
    directory, _ = zip_directory(map_files.good_bytes)
    for _ in range(data.draw(st.integers(1, 8))):
        where = data.draw(st.integers(0, directory - 1))
        content[where] ^= data.draw(st.integers(1, 255))
    outcome = map_files.load(bytes(content), exact=False)
    event('refused' if isinstance(outcome, MapFileError) else 'harmless')
    assert isinstance(outcome, MapFileError) or outcome[0] == MapFiles.METADATA


DIRECTORY_FIELDS = {
    'version made by': (4, 2),
    'version needed': (6, 2),
    'flags': (8, 2),
    'compression': (10, 2),
    'time': (12, 2),
    'crc': (16, 4),
    'compressed size': (20, 4),
    'size': (24, 4),
    'name length': (28, 2),
    'extra length': (30, 2),
    'header offset': (42, 4),
}


@settings(FUZZ, max_examples=100)
@example(entry=0, field='version needed', value=109)
@example(entry=0, field='compression', value=99)
@example(entry=3, field='flags', value=0x01)
@example(entry=5, field='flags', value=0x20)
@given(entry=st.integers(0, 11), field=st.sampled_from(sorted(DIRECTORY_FIELDS)), value=st.integers(0, 2**32 - 1))
def test_a_corrupted_zip_directory_is_refused(map_files, entry, field, value):
    """One field of one central directory entry set to any value: refused, or harmless."""
    content = bytearray(map_files.good_bytes)
    _, entries = zip_directory(map_files.good_bytes)
    offset, size = DIRECTORY_FIELDS[field]
    struct.pack_into(
        '<H' if size == 2 else '<I', content, entries[entry % len(entries)] + offset, value % 2 ** (8 * size)
    )
    outcome = map_files.load(bytes(content), exact=False)
    assert isinstance(outcome, MapFileError) or outcome[0] == MapFiles.METADATA


def stored(text: str) -> str:
    """``text`` as a numpy string array keeps it (without trailing NULs)."""
    return str(np.array(text))


def mutate(data, arrays: dict, kind: str) -> str:
    """Make one entry of ``arrays`` (the good file's) wrong in the way ``kind`` names; return what was done."""
    keys = arrays['block_keys']
    count = len(keys)
    if kind == 'missing':
        name = data.draw(st.sampled_from(FILE_ENTRIES))
        del arrays[name]
        return f'no {name}'
    if kind.startswith('attribute'):
        name = data.draw(st.sampled_from(ATTRIBUTES))
        value = arrays[name]
        if kind == 'attribute_dtype':
            arrays[name] = value.astype(
                data.draw(st.sampled_from(['<f8', '<f2', '>f4', '<i4', '|u1', '|b1', '<c8', '<U2']))
            )
        elif kind == 'attribute_shape':
            shape = data.draw(
                st.lists(st.integers(0, 6), max_size=5).map(tuple)
                | st.sampled_from(
                    [
                        value.shape[1:],
                        (count + 1,) + value.shape[1:],
                        (count - 1,) + value.shape[1:],
                        value.shape + (1,),
                        value.shape[:-1],
                        value.shape[::-1],
                    ]
                )
            )
            assume(shape != value.shape)
            arrays[name] = np.resize(value, shape).astype(np.float32)
        else:
            flat = value.reshape(-1).copy()
            flat[data.draw(st.integers(0, flat.size - 1))] = data.draw(st.sampled_from([np.nan, np.inf, -np.inf]))
            arrays[name] = flat.reshape(value.shape)
        return f'{name} as {arrays[name].dtype} {arrays[name].shape}'
    if kind == 'keys_dtype':
        arrays['block_keys'] = keys.astype(data.draw(st.sampled_from(['<i8', '<i2', '<u4', '>i4', '<f4', '<f8'])))
    elif kind == 'keys_shape':
        arrays['block_keys'] = data.draw(
            st.sampled_from(
                [keys[:, 0], keys[:, :2], keys[:, :, None], keys.T, np.concatenate([keys, keys[:, :1]], 1), np.int32(3)]
            )
        )
        assume(arrays['block_keys'].shape != keys.shape)
    elif kind == 'keys_count':
        arrays['block_keys'] = data.draw(st.sampled_from([keys[:-1], keys[:0], np.concatenate([keys, keys + 100])]))
    elif kind == 'keys_duplicate':
        i, j = data.draw(st.lists(st.integers(0, count - 1), min_size=2, max_size=2, unique=True))
        keys[i] = keys[j]
    elif kind == 'metadata_text':
        text = data.draw(
            st.text(max_size=60)
            | st.builds(
                json.dumps,
                st.recursive(
                    st.none() | st.booleans() | st.floats() | st.text(max_size=5),
                    lambda inner: st.lists(inner, max_size=3),
                    max_leaves=5,
                ),
            )
        )
        try:
            assume(not isinstance(json.loads(stored(text)), dict))
        except ValueError:
            pass
        arrays['metadata'] = np.array(text)
    elif kind == 'metadata_not_text':
        arrays['metadata'] = data.draw(
            st.sampled_from([np.array(5), np.zeros(3), np.array(b'{}'), np.array(['{}']), np.array([]), np.array(True)])
        )
    elif kind == 'format':
        arrays['format'] = np.array(data.draw(st.text(max_size=30).filter(lambda s: stored(s) != MAP_FILE_FORMAT)))
    elif kind == 'version':
        arrays['version'] = np.array(
            data.draw(st.integers(-(2**63), 2**63 - 1).filter(lambda v: v != MAP_FILE_VERSION))
        )
    elif kind == 'voxel_size':
        arrays['voxel_size_m'] = np.array(
            data.draw(
                st.floats(allow_nan=True, allow_infinity=True).filter(
                    lambda v: not math.isclose(v, MAP_CONFIG.voxel_size_m, rel_tol=1e-9, abs_tol=1e-12)
                )
            ),
            np.float64,
        )
    elif kind == 'block_resolution':
        arrays['block_resolution'] = np.array(data.draw(st.integers(-(2**31), 2**31).filter(lambda v: v != 4)))
    else:  # an object array: np.load may only refuse it, never unpickle it
        name = data.draw(st.sampled_from(FILE_ENTRIES + ('extra_votes',)))
        wrapped = np.empty(data.draw(st.sampled_from([(), (1,), (2, 1)])), dtype=object)
        wrapped[...] = data.draw(st.sampled_from([None, 'x', 1.5, {'a': 1}]))
        arrays[name] = wrapped
        return f'{name} as an object array'
    name = (
        'metadata'
        if kind.startswith('metadata')
        else 'block_keys'
        if kind.startswith('keys')
        else {'voxel_size': 'voxel_size_m'}.get(kind, kind)
    )
    return f'{name} = {arrays[name]!r:.200}'


WRONG_KINDS = [
    'missing',
    'attribute_dtype',
    'attribute_shape',
    'attribute_not_finite',
    'keys_dtype',
    'keys_shape',
    'keys_count',
    'keys_duplicate',
    'metadata_text',
    'metadata_not_text',
    'format',
    'version',
    'voxel_size',
    'block_resolution',
    'pickled_object',
]


@settings(FUZZ, max_examples=200)
@given(kind=st.sampled_from(WRONG_KINDS), data=st.data())
def test_valid_zips_with_wrong_arrays_are_refused(map_files, kind, data):
    """Missing entries, attributes of another dtype or shape or with NaN, block keys of another dtype, shape or
    count or repeated, metadata that is not a JSON object, another format, version, voxel size or resolution,
    pickled objects: each is a MapFileError and the map stays as it was."""
    arrays = map_files.arrays()
    what = mutate(data, arrays, kind)
    event(kind)
    outcome = map_files.load(arrays)
    assert isinstance(outcome, MapFileError), f'{what}: was loaded'


@settings(FUZZ, max_examples=60)
@given(
    st.dictionaries(
        st.text(st.characters(codec='ascii', categories=['L', 'N']), min_size=1, max_size=12).filter(
            lambda n: n not in FILE_ENTRIES
        ),
        arrays(
            st.sampled_from([np.int8, np.uint16, np.int64, np.float32, np.float64, np.bool_]),
            st.lists(st.integers(0, 4), max_size=3).map(tuple),
        ),
        min_size=1,
        max_size=4,
    ),
    st.booleans(),
)
def test_extra_entries_are_ignored_or_returned(map_files, extra, prefixed):
    """Entries load does not know are left alone; ``extra_*`` ones come back as the extra arrays, unchanged."""
    arrays = map_files.arrays()
    names = {(f'extra_{name}' if prefixed else name): value for name, value in extra.items()}
    arrays.update(names)
    metadata, returned = map_files.load(arrays)
    assert metadata == MapFiles.METADATA
    expected = {'votes': map_files.good_arrays['extra_votes']}
    if prefixed:
        expected.update(extra)
    assert set(returned) == set(expected)
    for name, value in expected.items():
        assert returned[name].dtype == value.dtype
        np.testing.assert_array_equal(returned[name], value)


@settings(FUZZ, max_examples=100)
@example(name='version', value=np.array('x'))
@example(name='block_resolution', value=np.array([1, 2]))
@example(name='frames_integrated', value=np.array('x'))
@example(name='frames_integrated', value=np.array(-5))
@given(
    name=st.sampled_from(['version', 'voxel_size_m', 'block_resolution', 'frames_integrated']),
    value=st.sampled_from(
        [
            np.array('x'),
            np.array([1, 2]),
            np.array(np.nan),
            np.array(np.inf),
            np.array(1 + 2j),
            np.array(-5),
            np.zeros((0,)),
            np.array(b'1'),
        ]
    ),
)
def test_header_entries_of_the_wrong_type_are_refused(map_files, name, value):
    arrays = map_files.arrays()
    arrays[name] = value
    outcome = map_files.load(arrays)
    assert isinstance(outcome, MapFileError), f'{name}={value!r} was loaded'


@settings(FUZZ, max_examples=20)
@given(arrays(st.sampled_from([np.float32, np.int32, np.uint8]), st.lists(st.integers(0, 5), max_size=3).map(tuple)))
def test_a_single_npy_file_is_refused(map_files, array):
    stream = io.BytesIO()
    np.save(stream, array)
    assert isinstance(map_files.load(stream.getvalue()), MapFileError)


def _huge_member(map_files, name: str, shape: tuple) -> dict:
    """The good entries, with ``name`` replaced by a .npy whose header declares ``shape`` but holds 16 bytes."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {'descr': '<f4', 'fortran_order': False, 'shape': shape})
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, 'w') as archive:
        for entry, value in map_files.good_arrays.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, value)
            archive.writestr(f'{entry}.npy', header.getvalue() + b'\0' * 16 if entry == name else member.getvalue())
    return raw.getvalue()


@settings(FUZZ, max_examples=10)
@given(name=st.sampled_from(FILE_ENTRIES), elements=st.integers(10**13, 10**14))
def test_an_entry_declaring_a_huge_array_is_refused(map_files, name, elements):
    assert isinstance(map_files.load(_huge_member(map_files, name, (elements,))), MapFileError)


_EXECUTED = []


def _record_execution(marker: str):
    """What the pickled object below runs when it is unpickled."""
    _EXECUTED.append(marker)
    return marker


class _Payload:
    def __reduce__(self):
        return _record_execution, ('unpickled',)


def test_a_pickled_object_in_the_file_is_refused_and_never_run(map_files):
    arrays = map_files.arrays()
    arrays['metadata'] = np.array([_Payload()], dtype=object)
    content = npz_bytes(arrays)
    with np.load(io.BytesIO(content), allow_pickle=True) as trap:  # the trap is live: unpickling runs it
        trap['metadata']
    assert _EXECUTED == ['unpickled']
    _EXECUTED.clear()
    outcome = map_files.load(content)
    assert isinstance(outcome, MapFileError) and 'Python objects' in str(outcome), outcome
    assert _EXECUTED == [], 'SceneMap.load unpickled the file'


# ---------------------------------------------------------------------------------------------------------------
# Answer parsing
# ---------------------------------------------------------------------------------------------------------------

TAG = re.compile(r'<OBJ(\d{1,4})>', re.IGNORECASE)

answer_fragments = st.sampled_from(
    [
        'obj',
        'object',
        'OBJ',
        '#',
        ' ',
        '  ',
        '\n',
        '\t',
        '<',
        '>',
        '<OBJ',
        '.',
        '1',
        '17',
        '999',
        '1000',
        '12345',
        '2.5',
        '-3',
        'x',
        'and',
        ',',
        '\u0663',
        '\uff17',
        '<OBJ007>',
        '<obj12>',
        '<OBJ1234>',
        '<OBJ12345>',
    ]
)


@settings(FUZZ, max_examples=300)
@example('obj' + ' ' * 20000)
@example('object #' + ' ' * 20000 + 'x')
@example('<OBJ' + '1' * 100000)
@given(
    st.one_of(
        st.text(),
        st.lists(answer_fragments, max_size=60).map(''.join),
        st.tuples(st.lists(answer_fragments, max_size=5).map(''.join), st.integers(1, 5000)).map(
            lambda pair: pair[0] * pair[1]
        ),
    )
)
def test_parse_object_ids_never_raises_and_stays_in_range(answer):
    """Any text: unique ints, in the order they first appear, in 0..9999 for <OBJ####> tags (the only ids when there
    is any tag) and 0..999 for plain numbers; linear time, also for long runs of spaces after 'obj'."""
    with time_bound(2.0, f'parse_object_ids of {len(answer)} characters'):
        ids = parse_object_ids(answer)
    event(f'{min(len(ids), 3)}{"+" if len(ids) >= 3 else ""} ids')
    assert isinstance(ids, list) and all(type(i) is int for i in ids)
    assert len(ids) == len(set(ids))
    tags = [int(m) for m in TAG.findall(answer)]
    if tags:
        assert ids == list(dict.fromkeys(tags))
    else:
        assert all(0 <= i <= 999 for i in ids)
        assert all(str(i) in answer or not answer.isascii() for i in ids)


@settings(FUZZ, max_examples=200)
@given(
    ids=st.lists(st.integers(0, 9999), min_size=1, max_size=100),
    filler=st.lists(st.text(st.characters(exclude_characters='<>'), max_size=8), min_size=1, max_size=5),
)
def test_tags_written_by_object_tag_are_read_back(ids, filler):
    answer = ''.join(f'{filler[k % len(filler)]}{object_tag(i)}' for k, i in enumerate(ids)) + filler[0]
    assert parse_object_ids(answer) == list(dict.fromkeys(ids))


# ---------------------------------------------------------------------------------------------------------------
# SceneQuery requests
# ---------------------------------------------------------------------------------------------------------------

TEMPLATES = PromptTemplates.from_yaml(REPO_ROOT / 'config' / 'prompts.yaml')
SNAPSHOT = make_snapshot(num_keyframes=3, width=64, height=48)
EMPTY_SNAPSHOT = dataclasses.replace(SNAPSHOT, instances=())
CONFIGS = [QueryConfig(), QueryConfig(max_question_chars=40, max_object_ids=4, max_num_frames=3, default_num_frames=2)]


class Replying(VlmBackend):
    """A stand-in for a model that replies a given text or fails, as in test_scene_query.py (real models are run
    in test_vlm.py and test_scene_query.py; hundreds of fuzzed requests need no model)."""

    name = 'replying'

    def __init__(self, reply):
        self.reply = reply

    def preprocess(self, prompt):
        return prompt

    def generate(self, inputs, timeout_s):
        if isinstance(self.reply, Exception):
            raise self.reply
        return self.reply


texts = st.one_of(
    st.text(max_size=50),
    st.text(st.characters(categories=['Cc', 'Cf', 'Zl', 'Zp', 'Zs', 'Co']), max_size=30),
    st.tuples(st.text(min_size=1, max_size=10), st.integers(1, 30000)).map(lambda p: p[0] * p[1]),
)
id_lists = st.one_of(
    st.lists(
        st.sampled_from([obj.id for obj in INSTANCES])
        | st.integers(-(2**31), 2**31 - 1)
        | st.integers(-(10**30), 10**30),
        max_size=8,
    ),
    st.tuples(st.lists(st.integers(-(2**31), 2**31 - 1), min_size=1, max_size=20), st.integers(1, 10000)).map(
        lambda p: p[0] * p[1]
    ),
).map(tuple)
anything = st.builds(
    QueryRequest,
    question=texts,
    task=st.sampled_from(QUERY_TASKS) | st.text(max_size=12),
    object_ids=id_lists,
    num_frames=st.integers(0, 40) | st.integers(0, 2**32 - 1),
    return_images=st.booleans(),
    situation=texts,
)
plausible = st.builds(  # requests a client would send: mostly valid, so the answer path runs too
    QueryRequest,
    question=st.text(min_size=1, max_size=30),
    task=st.sampled_from(QUERY_TASKS),
    object_ids=st.lists(st.sampled_from([obj.id for obj in INSTANCES]), max_size=2).map(tuple),
    num_frames=st.integers(0, 4),
    return_images=st.booleans(),
    situation=st.text(max_size=30),
)
requests = st.sampled_from([anything, plausible, plausible, plausible]).flatmap(lambda strategy: strategy)


def expected_outcome(request: QueryRequest, config: QueryConfig, snapshot, backend):
    """The error code SceneQuery.srv and QueryConfig's documentation give for this request (NONE: an answer)."""
    known = {obj.id for obj in snapshot.instances} if snapshot is not None else set()
    if (
        request.task not in QUERY_TASKS
        or max(len(request.question), len(request.situation)) > config.max_question_chars
        or (request.task in ('qa', 'ground', 'multi_ground') and not request.question.strip())
        or request.num_frames > config.max_num_frames
        or len(request.object_ids) > config.max_object_ids
        or (request.task == 'caption' and len(request.object_ids) != 1)
        or set(request.object_ids) - known
    ):
        return ErrorCode.INVALID_REQUEST
    if request.task == 'objects':
        return ErrorCode.NONE
    if backend is None:
        return ErrorCode.NOT_IMPLEMENTED
    if not known:
        return ErrorCode.MAP_NOT_READY
    if isinstance(backend.reply, Exception) or not backend.reply.strip():
        return ErrorCode.MODEL
    return ErrorCode.NONE


@settings(FUZZ, max_examples=500)
@given(
    request=requests,
    config=st.sampled_from(CONFIGS),
    snapshot=st.sampled_from([SNAPSHOT, SNAPSHOT, SNAPSHOT, EMPTY_SNAPSHOT, None]),
    backend=st.sampled_from([None, 'reply', 'reply']).flatmap(
        lambda kind: (
            st.none()
            if kind is None
            else st.builds(Replying, st.text(max_size=40) | st.just(VlmError('CUDA out of memory')))
        )
    ),
)
def test_scene_queries_always_get_a_well_formed_result(request, config, snapshot, backend):
    """Random questions (control characters, huge lengths), tasks, huge id lists, frame counts, snapshots and
    replies: the documented error code with a short message, or an answer with objects of the map; never an
    exception."""
    with time_bound(10.0, 'answer_query'):
        result = answer_query(request, config, snapshot, backend, TEMPLATES)
    assert isinstance(result, QueryResult) and isinstance(result.error_code, ErrorCode)
    assert isinstance(result.message, str) and isinstance(result.answer, str)
    assert result.error_code == expected_outcome(request, config, snapshot, backend), result.message
    event(f'error_code {result.error_code.name}')
    if not result.success:
        assert result.message.strip() and len(result.message) < 500 and not result.objects and not result.images
        return
    assert result.answer
    if request.task == 'objects':
        wanted = set(request.object_ids) or {obj.id for obj in INSTANCES}
        assert result.objects == tuple(obj for obj in (snapshot.instances if snapshot else ()) if obj.id in wanted)
        return
    assert result.answer == backend.reply.strip() and all(obj in INSTANCES for obj in result.objects)
    assert len(result.objects) <= (1 if request.task == 'ground' else len(INSTANCES))
    assert len(result.images) == (
        1 + min(request.num_frames or config.default_num_frames, 3) if request.return_images else 0
    )
