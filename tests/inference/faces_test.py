"""Face detection and cropping (OpenCV Haar cascade on drawn demo faces; no TensorFlow)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

from fer_keras.errors import FerError
from fer_keras.inference.faces import Box, Face, crop_faces, detect_faces, expand_box, find_faces
from fer_keras.model.crop import LEGACY_MARGIN, CropRule
from tests.model_fixtures import face_photo


def gray(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("L"))


def test_detects_one_drawn_face_where_it_was_drawn():
    photo = face_photo(("happy",), size=(640, 480), face_size=150)
    [box] = detect_faces(gray(photo))
    # The face was pasted at x=245..395, y=165..315; Haar's box sits inside that square.
    assert 230 <= box.x <= 275 and 150 <= box.y <= 200
    assert 110 <= box.w <= 170 and box.w == box.h


def test_detects_several_faces_largest_first():
    photo = face_photo(("happy", "sad", "surprise"))
    boxes = detect_faces(gray(photo))
    assert len(boxes) == 3
    assert [b.area for b in boxes] == sorted((b.area for b in boxes), reverse=True)
    # Three separate faces, not three hits on one.
    xs = sorted(b.x for b in boxes)
    assert xs[1] - xs[0] > 100 and xs[2] - xs[1] > 100


def test_no_faces_in_plain_or_noise_images():
    assert detect_faces(np.full((480, 640), 128, np.uint8)) == []
    noise = np.random.default_rng(0).integers(0, 256, (480, 640), dtype=np.uint8)
    assert detect_faces(noise) == []


def test_images_smaller_than_a_face_find_nothing():
    assert detect_faces(np.zeros((10, 10), np.uint8)) == []


def test_large_photos_are_searched_downscaled_but_boxes_are_in_original_pixels():
    small = face_photo(("happy",), size=(640, 480), face_size=150)
    big = small.resize((2560, 1920), Image.BILINEAR)
    [b_small] = detect_faces(gray(small))
    [b_big] = detect_faces(gray(big), max_side=800)
    for a, b in zip(b_small.as_list(), b_big.as_list()):
        assert abs(a * 4 - b) <= 40


def test_expand_box_adds_margin_and_clips_to_the_image():
    assert expand_box(Box(40, 40, 20, 20), 0.5, 100, 100) == Box(30, 30, 40, 40)
    assert expand_box(Box(0, 5, 50, 50), 0.2, 55, 200) == Box(0, 0, 55, 65)
    assert expand_box(Box(3, 3, 10, 10), 0.0, 20, 20) == Box(3, 3, 10, 10)


def test_find_faces_falls_back_to_the_whole_image():
    img = Image.new("RGB", (64, 48), (128, 128, 128))
    assert find_faces(img) == [Face(Box(0, 0, 64, 48), False)]
    photo = face_photo(("happy",))
    assert find_faces(photo, detect=False) == [Face(Box(0, 0, 640, 480), False)]
    [face] = find_faces(photo)
    assert face.detected


def test_crops_follow_the_rule_but_whole_images_stay_whole():
    photo = face_photo(("happy",))
    [face] = find_faces(photo)
    box = face.detection
    [square] = crop_faces(photo, [face], CropRule(margin=0.2))
    side = round(max(box.w, box.h) * 1.4)
    assert abs(square.size[0] - side) <= 1 and square.size[0] == square.size[1]
    [legacy] = crop_faces(photo, [face], CropRule(margin=0.2, square=False, fill="clip"))
    assert legacy.size == (box.w + 2 * round(box.w * 0.2), box.h + 2 * round(box.h * 0.2))
    whole = Face(Box(0, 0, 640, 480), False)
    assert crop_faces(photo, [whole], CropRule(margin=0.5))[0].size == (640, 480)


def test_a_face_filling_a_tight_crop_is_found_and_cropped_with_edge_fill():
    photo = face_photo(("happy",))
    [face] = find_faces(photo)
    box = face.detection
    tight = photo.crop((box.x, box.y, box.x + box.w, box.y + box.h)).resize((48, 48))
    [found] = find_faces(tight)  # padding and upscaling let Haar see a face that fills the image
    assert found.detected
    assert 0.7 * 48 < found.detection.w < 1.4 * 48
    [crop] = crop_faces(tight, [found], CropRule(margin=0.3))
    assert crop.size[0] == crop.size[1] > 48  # reaches past the edges, completed with edge pixels
    pixels = np.asarray(crop.convert("L"))
    assert pixels.min() >= np.asarray(tight.convert("L")).min()  # no black border from the fill


def test_crop_rule_round_trips_through_metadata_and_refuses_bad_values():
    rule = CropRule(margin=0.1, square=True, fill="edge")
    assert CropRule.from_metadata(rule.to_dict()) == rule
    assert CropRule.from_metadata(None) == CropRule(margin=LEGACY_MARGIN, square=False, fill="clip")
    with pytest.raises(FerError, match=r"m\.json: crop: 'fill' must be one of edge, clip; got 'blur'"):
        CropRule.from_metadata({"fill": "blur"}, where="m.json")
    with pytest.raises(FerError, match="'margin' must be"):
        CropRule(margin=-1)


def test_detection_is_consistent_across_threads():
    photo = gray(face_photo(("happy", "sad")))
    expected = detect_faces(photo)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: detect_faces(photo), range(8)))
    assert all(r == expected for r in results)


def test_bad_arguments_are_one_line_errors():
    with pytest.raises(FerError, match=r"2-D \(gray\) or \(H, W, 3\) \(RGB\) uint8"):
        detect_faces(np.zeros((10, 10, 4), np.uint8))
    with pytest.raises(FerError, match="uint8"):
        detect_faces(np.zeros((10, 10), np.float32))
    with pytest.raises(FerError, match="'margin' must be"):
        expand_box(Box(0, 0, 1, 1), -0.1, 10, 10)
    with pytest.raises(FerError, match="'scale_factor' must be"):
        detect_faces(np.zeros((50, 50), np.uint8), scale_factor=1.0)


def test_haar_takes_rgb_as_its_grayscale():
    photo = face_photo(("happy", "sad"))
    assert detect_faces(np.asarray(photo), detector="haar") == detect_faces(gray(photo), detector="haar")
    assert find_faces(photo, detector="haar") == find_faces(photo.convert("L"), detector="haar")
