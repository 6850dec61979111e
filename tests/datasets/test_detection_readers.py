"""CocoDetection, VOCDetection and SegmentationFolder on small files the tests write, and their errors."""

import json
import os

import numpy as np
import pycocotools.mask as cocomask
import pytest
from PIL import Image

import lamina
from lamina.datasets import VOC_CLASSES, CocoDetection, DatasetFileError, SegmentationFolder, VOCDetection

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:pycocotools")


def _save_rgb(path, h, w, seed=0):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    arr = np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)
    Image.fromarray(arr).save(path)
    return arr


# -- COCO ---------------------------------------------------------------------------------------------

def _coco(tmp_path, anns=None, images=None, categories=None):
    img = _save_rgb(str(tmp_path / "imgs" / "a.png"), 20, 30)
    _save_rgb(str(tmp_path / "imgs" / "sub" / "b.png"), 10, 12, seed=1)
    rle_mask = np.zeros((20, 30), dtype=np.uint8)
    rle_mask[2:9, 20:27] = 1
    rle = cocomask.encode(np.asfortranarray(rle_mask))
    unc = np.zeros((10, 12), dtype=np.uint8)
    unc[1:4, 2:6] = 1
    data = {
        "images": images if images is not None else [
            {"id": 7, "file_name": "sub/b.png", "width": 12, "height": 10},
            {"id": 3, "file_name": "a.png", "width": 30, "height": 20},
            {"id": 9, "file_name": "a.png", "width": 30, "height": 20},  # no annotation: an empty target
        ],
        "categories": categories if categories is not None else [
            {"id": 18, "name": "dog"}, {"id": 1, "name": "person"}, {"id": 5, "name": "car"}],
        "annotations": anns if anns is not None else [
            {"id": 1, "image_id": 3, "category_id": 18, "bbox": [1.5, 2.0, 10.0, 5.0], "area": 40.0, "iscrowd": 0,
             "segmentation": [[2, 2, 11, 2, 11, 7, 2, 7], [4, 10, 8, 10, 6, 14]]},
            {"id": 2, "image_id": 3, "category_id": 5, "bbox": [20, 2, 7, 7], "area": 49.0, "iscrowd": 1,
             "segmentation": {"size": [20, 30], "counts": rle["counts"].decode()}},
            {"id": 3, "image_id": 3, "category_id": 1, "bbox": [25, 15, 10, 10], "area": 25.0, "iscrowd": 0,
             "segmentation": [[25, 15, 29, 15, 29, 19]]},  # reaches past the image: clipped to (25, 15, 30, 20)
            {"id": 4, "image_id": 3, "category_id": 1, "bbox": [31, 1, 3, 3], "segmentation": [[31, 1, 33, 1, 33, 3]]},
            {"id": 5, "image_id": 7, "category_id": 1, "bbox": [2, 1, 4, 3], "area": 12.0,
             "segmentation": {"size": [10, 12], "counts": [int(c) for c in _unc_counts(unc)]}},
        ],
    }
    ann = tmp_path / "ann.json"
    ann.write_text(json.dumps(data))
    return str(tmp_path / "imgs"), str(ann), img, rle_mask, unc, data


def _unc_counts(m):
    flat = m.ravel(order="F")
    counts, cur, run = [], 0, 0
    for v in flat:
        if v != cur:
            counts.append(run)
            run, cur = 0, v
        run += 1
    return counts + [run]


def test_coco_reader(tmp_path):
    root, ann, img, rle_mask, unc, data = _coco(tmp_path)
    ds = CocoDetection(root, ann)
    assert ds.classes == ["background", "person", "car", "dog"]  # category ids 1, 5, 18 in order
    assert ds.cat_ids == [None, 1, 5, 18] and ds.ids == [3, 7, 9] and len(ds) == 3
    image, t = ds[0]
    assert image.shape == (3, 20, 30) and image.dtype == lamina.float32
    np.testing.assert_allclose(image.numpy(), img.transpose(2, 0, 1) / 255.0, atol=1e-7)
    assert t["image_id"] == 3
    # the annotation outside the image (x from 31) is dropped
    np.testing.assert_array_equal(t["boxes"].numpy(), [[1.5, 2, 11.5, 7], [20, 2, 27, 9], [25, 15, 30, 20]])
    assert t["labels"].tolist() == [3, 2, 1] and t["iscrowd"].tolist() == [0, 1, 0]
    assert t["area"].tolist() == [40.0, 49.0, 25.0] and t["masks"].dtype == lamina.uint8
    masks = t["masks"].numpy()
    # polygons merged as pycocotools' annToRLE does it
    ref = cocomask.decode(cocomask.merge(cocomask.frPyObjects(data["annotations"][0]["segmentation"], 20, 30)))
    np.testing.assert_array_equal(masks[0], ref)
    np.testing.assert_array_equal(masks[1], rle_mask)
    _, t7 = ds[1]
    np.testing.assert_array_equal(t7["masks"].numpy()[0], unc)
    np.testing.assert_array_equal(t7["boxes"].numpy(), [[2, 1, 6, 4]])
    _, t9 = ds[2]
    assert t9["boxes"].shape == (0, 4) and t9["masks"].shape == (0, 20, 30) and t9["labels"].shape == (0,)


def test_coco_transforms_and_no_masks(tmp_path):
    anns = [{"id": 1, "image_id": 3, "category_id": 1, "bbox": [1, 1, 2, 2]}]
    root, ann, *_ = _coco(tmp_path, anns=anns)
    ds = CocoDetection(root, ann, transforms=lambda i, t: (i[:1], {**t, "seen": True}))
    image, t = ds[0]
    assert image.shape == (1, 20, 30) and t["seen"] and "masks" not in t
    assert t["area"].tolist() == [4.0]  # no area given: the box's


@pytest.mark.parametrize("change, match", [
    (lambda d: d.pop("images"), "expected a list under 'images'"),
    (lambda d: d["annotations"][0].update(bbox=[1, 2, 3]), "'bbox' must be 4 finite numbers"),
    (lambda d: d["annotations"][0].update(bbox=[1, 2, -3, 4]), "'bbox' must be 4 finite numbers"),
    (lambda d: d["annotations"][0].update(category_id=99), "category_id 99 is not among"),
    (lambda d: d["annotations"][0].update(image_id=42), "image_id 42 is not among"),
    (lambda d: d["annotations"][0].update(iscrowd=2), "'iscrowd' must be 0 or 1"),
    (lambda d: d["images"][0].update(width=0), "'width' must be a positive integer"),
    (lambda d: d["images"][0].update(file_name="../x.png"), "leaves the image folder"),
    (lambda d: d["images"][0].update(file_name="/etc/passwd"), "leaves the image folder"),
    (lambda d: d["images"].append(dict(d["images"][0])), "image id 7 appears twice"),
    (lambda d: d["categories"].append({"id": 1, "name": "again"}), "category id 1 appears twice"),
    (lambda d: d["categories"].append({"name": "no id"}), "category 3 must be an object"),
])
def test_coco_malformed_json(tmp_path, change, match):
    root, ann, *_, data = _coco(tmp_path)
    change(data)
    with open(ann, "w") as f:
        json.dump(data, f)
    with pytest.raises(DatasetFileError, match=match) as e:
        CocoDetection(root, ann)
    assert "ann.json" in str(e.value)


def test_coco_bad_files(tmp_path):
    root, ann, *_, data = _coco(tmp_path)
    with open(ann, "w") as f:
        f.write("{not json")
    with pytest.raises(DatasetFileError, match="ann.json is not valid JSON"):
        CocoDetection(root, ann)
    # an RLE of the wrong length and an image whose size differs from the JSON: errors on access
    root, ann, *_, data = _coco(tmp_path)
    data["annotations"][1]["segmentation"] = {"size": [20, 30], "counts": [5, 5]}
    data["images"][0]["width"] = 13
    with open(ann, "w") as f:
        json.dump(data, f)
    ds = CocoDetection(root, ann)
    with pytest.raises(DatasetFileError, match=r"annotation id 2: bad segmentation: RLE counts sum to 10"):
        ds[0]
    with pytest.raises(DatasetFileError, match=r"b.png is 12 x 10 pixels, but .*ann.json says 13 x 10"):
        ds[1]
    (tmp_path / "imgs" / "a.png").write_bytes(b"not an image")
    with pytest.raises(DatasetFileError, match="cannot read image .*a.png"):
        ds[0]


# -- VOC ----------------------------------------------------------------------------------------------

_VOC_XML = """<annotation>
  <filename>{fn}</filename>
  <size><width>40</width><height>30</height><depth>3</depth></size>
  <object><name>dog</name><difficult>0</difficult>
    <bndbox><xmin>1</xmin><ymin>1</ymin><xmax>40</xmax><ymax>30</ymax></bndbox></object>
  <object><name>cat</name><difficult>1</difficult>
    <bndbox><xmin>5</xmin><ymin>6</ymin><xmax>12.5</xmax><ymax>20</ymax></bndbox></object>
</annotation>"""


def _voc(tmp_path, xml=None):
    (tmp_path / "Annotations").mkdir(exist_ok=True)
    _save_rgb(str(tmp_path / "JPEGImages" / "000001.jpg"), 30, 40)
    _save_rgb(str(tmp_path / "JPEGImages" / "other_name.jpg"), 30, 40)
    (tmp_path / "Annotations" / "000001.xml").write_text(xml or _VOC_XML.format(fn="000001.jpg"))
    (tmp_path / "Annotations" / "000002.xml").write_text(
        "<annotation><filename>other_name.jpg</filename><size><width>40</width><height>30</height></size>"
        "</annotation>")
    return str(tmp_path)


def test_voc_reader(tmp_path):
    root = _voc(tmp_path)
    ds = VOCDetection(root)
    assert ds.classes == ["background", "cat", "dog"] and ds.ids == ["000001", "000002"]
    image, t = ds[0]
    assert image.shape == (3, 30, 40)
    # 1-based inclusive pixel indices -> continuous coordinates: (xmin - 1, ymin - 1, xmax, ymax)
    np.testing.assert_array_equal(t["boxes"].numpy(), [[0, 0, 40, 30], [4, 5, 12.5, 20]])
    assert t["labels"].tolist() == [2, 1] and t["difficult"].tolist() == [0, 1] and t["iscrowd"].tolist() == [0, 0]
    np.testing.assert_allclose(t["area"].numpy(), [1200.0, 8.5 * 15])
    image2, t2 = ds[1]  # found through <filename>, no object: an empty target
    assert image2.shape == (3, 30, 40) and t2["boxes"].shape == (0, 4)
    ds = VOCDetection(root, classes=VOC_CLASSES)
    assert ds.classes[1:] == list(VOC_CLASSES) and ds[0][1]["labels"].tolist() == [12, 8]
    os.makedirs(tmp_path / "ImageSets" / "Main")
    (tmp_path / "ImageSets" / "Main" / "val.txt").write_text("000002\n")
    assert VOCDetection(root, image_set="val").ids == ["000002"]
    with pytest.raises(DatasetFileError, match=r"object names \['cat', 'dog'\] are not in classes"):
        VOCDetection(root, classes=["bird"])


_BOMB = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<annotation><filename>&lol2;</filename></annotation>"""


@pytest.mark.parametrize("xml, match", [
    (_BOMB, "declares a DOCTYPE"),
    ("<annotation><object>", "not well-formed XML"),
    ("<notvoc/>", "expected the root element <annotation>, got <notvoc>"),
    ("<annotation><object><name>dog</name></object></annotation>", r"object 0 \(dog\): expected a <bndbox>"),
    ("<annotation><object><name>dog</name><bndbox><xmin>a</xmin><ymin>1</ymin><xmax>2</xmax><ymax>2</ymax>"
     "</bndbox></object></annotation>", "<xmin> must be a number, got 'a'"),
    ("<annotation><object><name>dog</name><bndbox><xmin>5</xmin><ymin>1</ymin><xmax>2</xmax><ymax>2</ymax>"
     "</bndbox></object></annotation>", "xmin <= xmax"),
    ("<annotation><object><bndbox/></object></annotation>", "expected a <name> element"),
    ("<annotation><size><width>0</width><height>3</height></size></annotation>", "positive integer width"),
])
def test_voc_malformed_xml(tmp_path, xml, match):
    root = _voc(tmp_path, xml=xml)
    with pytest.raises(DatasetFileError, match=match) as e:
        VOCDetection(root)
    assert "000001.xml" in str(e.value)


def test_voc_missing_image_and_size_mismatch(tmp_path):
    root = _voc(tmp_path)
    os.remove(tmp_path / "JPEGImages" / "000001.jpg")
    _save_rgb(str(tmp_path / "JPEGImages" / "000001.png"), 30, 41)
    ds = VOCDetection(root)
    with pytest.raises(DatasetFileError, match="000001.png is 41 x 30 pixels, but .*000001.xml says 40 x 30"):
        ds[0]
    os.remove(tmp_path / "JPEGImages" / "000001.png")
    with pytest.raises(DatasetFileError, match="no image for .*000001.xml"):
        ds[0]


# -- semantic masks -----------------------------------------------------------------------------------

def _palette_png(path, arr):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    im = Image.fromarray(arr.astype(np.uint8), mode="P")
    im.putpalette([(i * 37) % 256 for i in range(768)])  # colours unrelated to the indices
    im.save(path)


def test_segmentation_folder(tmp_path):
    m1 = np.zeros((8, 10), dtype=np.uint8)
    m1[2:5, 3:7] = 2
    m1[0, 0] = 255
    m2 = np.ones((6, 6), dtype=np.uint8)
    img1 = _save_rgb(str(tmp_path / "images" / "a.png"), 8, 10)
    _save_rgb(str(tmp_path / "images" / "sub" / "b.jpg"), 6, 6)
    _palette_png(str(tmp_path / "masks" / "a.png"), m1)
    os.makedirs(tmp_path / "masks" / "sub")
    Image.fromarray(m2, mode="L").save(tmp_path / "masks" / "sub" / "b.png")
    ds = SegmentationFolder(str(tmp_path))
    assert len(ds) == 2 and ds.classes == ["background", "class_1", "class_2"]  # largest index 2, 255 ignored
    image, mask = ds[0]
    assert image.shape == (3, 8, 10) and mask.shape == (8, 10) and mask.dtype == lamina.int64
    np.testing.assert_allclose(image.numpy(), img1.transpose(2, 0, 1) / 255.0, atol=1e-7)
    np.testing.assert_array_equal(mask.numpy(), m1)  # palette indices, not colours
    np.testing.assert_array_equal(ds[1][1].numpy(), m2)
    (tmp_path / "classes.txt").write_text("bg\nroad\ncar\nsky\n")
    assert SegmentationFolder(str(tmp_path)).classes == ["bg", "road", "car", "sky"]
    small = SegmentationFolder(str(tmp_path), classes=["bg", "x"])
    with pytest.raises(DatasetFileError, match=r"a.png holds class index 2, but there are 2 classes"):
        small[0]


def test_segmentation_folder_errors(tmp_path):
    _save_rgb(str(tmp_path / "images" / "a.png"), 8, 10)
    _save_rgb(str(tmp_path / "images" / "c.png"), 8, 10)
    _save_rgb(str(tmp_path / "masks" / "a.png"), 8, 10)  # an RGB mask
    with pytest.raises(DatasetFileError, match=r"images without a mask \(1\): \['c'\]"):
        SegmentationFolder(str(tmp_path))
    os.remove(tmp_path / "images" / "c.png")
    with pytest.raises(DatasetFileError, match="mask .*a.png has image mode 'RGB'"):
        SegmentationFolder(str(tmp_path))
    Image.fromarray(np.zeros((8, 9), dtype=np.uint8), mode="L").save(tmp_path / "masks" / "a.png")
    ds = SegmentationFolder(str(tmp_path), classes=["bg", "fg"])
    with pytest.raises(DatasetFileError, match="mask .*a.png is 9 x 8 pixels, its image .*a.png 10 x 8"):
        ds[0]
    with pytest.raises(FileNotFoundError, match="images/images does not exist"):
        SegmentationFolder(str(tmp_path / "images"))
