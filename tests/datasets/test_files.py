"""Readers for users' files: MNIST/Fashion-MNIST IDX, CIFAR binaries, ImageFolder — written here, then
read back, then corrupted in each way that must give a clear error naming the file."""

import gzip
import os
import struct

import numpy as np
import pytest

import lamina
from lamina.datasets import CIFAR10, CIFAR100, MNIST, DatasetFileError, FashionMNIST, ImageFolder, read_idx


def write_idx(path, array, type_code=0x08, gz=False):
    header = struct.pack(">BBBB", 0, 0, type_code, array.ndim) + struct.pack(f">{array.ndim}i", *array.shape)
    data = header + array.astype(">u1" if type_code == 0x08 else ">i4").tobytes()
    with (gzip.open if gz else open)(path, "wb") as f:
        f.write(data)
    return data


def make_mnist(root, name="MNIST", n=5, gz=False, prefix="train"):
    rng = np.random.default_rng(0)
    folder = os.path.join(root, name, "raw")
    os.makedirs(folder, exist_ok=True)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n, dtype=np.uint8)
    ext = ".gz" if gz else ""
    write_idx(os.path.join(folder, f"{prefix}-images-idx3-ubyte{ext}"), images, gz=gz)
    write_idx(os.path.join(folder, f"{prefix}-labels-idx1-ubyte{ext}"), labels, gz=gz)
    return folder, images, labels


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("cls", [MNIST, FashionMNIST])
def test_mnist_reads_idx(tmp_path, gz, cls):
    _, images, labels = make_mnist(str(tmp_path), cls.__name__, gz=gz)
    ds = cls(str(tmp_path))
    assert len(ds) == 5 and ds.data.dtype == np.uint8
    img, label = ds[3]
    assert img.shape == (1, 28, 28) and img.dtype == lamina.float32 and label == labels[3]
    np.testing.assert_allclose(img.numpy()[0], images[3] / 255.0, rtol=1e-6)
    make_mnist(str(tmp_path), cls.__name__, n=2, prefix="t10k")
    assert len(cls(str(tmp_path), train=False)) == 2


def test_mnist_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        MNIST(str(tmp_path))
    with pytest.raises(RuntimeError, match="downloads nothing"):
        MNIST(str(tmp_path), download=True)


def corrupt(path, data):
    with open(path, "wb") as f:
        f.write(data)


@pytest.mark.parametrize("damage,message", [
    (lambda d: b"\x08\x03" + d[2:], "wrong magic number"),
    (lambda d: d[:2] + b"\x07" + d[3:], "wrong magic number"),
    (lambda d: d[:3] + b"\x02" + d[4:], "3 dimensions"),
    (lambda d: d[:-10], "truncated"),
    (lambda d: d + b"\x00", "longer than its header"),
    (lambda d: d[:3], "too short"),
    (lambda d: d[:10], "truncated inside its header"),
])
def test_mnist_corrupt_images(tmp_path, damage, message):
    folder, images, _ = make_mnist(str(tmp_path))
    path = os.path.join(folder, "train-images-idx3-ubyte")
    with open(path, "rb") as f:
        data = f.read()
    corrupt(path, damage(data))
    with pytest.raises(DatasetFileError, match=message) as err:
        MNIST(str(tmp_path))
    assert path in str(err.value)


def test_mnist_mislabeled_and_mismatched(tmp_path):
    folder, _, labels = make_mnist(str(tmp_path))
    lpath = os.path.join(folder, "train-labels-idx1-ubyte")
    bad = labels.copy()
    bad[2] = 12
    write_idx(lpath, bad)
    with pytest.raises(DatasetFileError, match=r"label 12 of record 2 is out of range 0\.\.9") as err:
        MNIST(str(tmp_path))
    assert lpath in str(err.value)
    write_idx(lpath, labels[:4])
    with pytest.raises(DatasetFileError, match="5 images but .* 4 labels"):
        MNIST(str(tmp_path))
    write_idx(lpath, labels.astype(np.int32), type_code=0x0C)
    with pytest.raises(DatasetFileError, match="expected unsigned bytes"):
        MNIST(str(tmp_path))


def test_corrupt_gzip(tmp_path):
    folder, _, _ = make_mnist(str(tmp_path), gz=True)
    path = os.path.join(folder, "train-images-idx3-ubyte.gz")
    with open(path, "rb") as f:
        data = f.read()
    corrupt(path, data[: len(data) // 2])
    with pytest.raises(DatasetFileError, match="corrupt or truncated gzip") as err:
        MNIST(str(tmp_path))
    assert path in str(err.value)
    corrupt(path, b"not gzip at all")
    with pytest.raises(DatasetFileError, match="not a gzip file"):
        MNIST(str(tmp_path))


def test_read_idx_other_types(tmp_path):
    p = str(tmp_path / "x.idx")
    write_idx(p, np.array([[1, -2], [3, 400]]), type_code=0x0C)
    assert read_idx(p).tolist() == [[1, -2], [3, 400]]


# --- CIFAR -----------------------------------------------------------------------------------

def make_cifar(root, hundred=False, n=4, files=None):
    rng = np.random.default_rng(1)
    folder = os.path.join(root, "cifar-100-binary" if hundred else "cifar-10-batches-bin")
    os.makedirs(folder, exist_ok=True)
    names = files or (["train.bin", "test.bin"] if hundred else [f"data_batch_{i}.bin" for i in range(1, 6)]
                      + ["test_batch.bin"])
    written = {}
    for name in names:
        pixels = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        if hundred:
            lab = np.stack([rng.integers(0, 20, n), rng.integers(0, 100, n)], 1).astype(np.uint8)
        else:
            lab = rng.integers(0, 10, size=(n, 1), dtype=np.uint8)
        with open(os.path.join(folder, name), "wb") as f:
            f.write(np.concatenate([lab, pixels], 1).tobytes())
        written[name] = (lab, pixels)
    return folder, written


def test_cifar10_reads_binary(tmp_path):
    _, written = make_cifar(str(tmp_path))
    ds = CIFAR10(str(tmp_path))
    assert len(ds) == 20 and ds.data.shape == (20, 32, 32, 3)
    lab, pixels = written["data_batch_2.bin"]
    img, label = ds[4 + 1]
    assert label == lab[1, 0] and img.shape == (3, 32, 32)
    np.testing.assert_allclose(img.numpy(), pixels[1].reshape(3, 32, 32) / 255.0, rtol=1e-6)
    test = CIFAR10(str(tmp_path), train=False)
    assert len(test) == 4 and test.classes[0] == "airplane"


def test_cifar100_fine_labels(tmp_path):
    _, written = make_cifar(str(tmp_path), hundred=True)
    ds = CIFAR100(str(tmp_path))
    lab, pixels = written["train.bin"]
    assert [ds[i][1] for i in range(4)] == lab[:, 1].tolist() and len(ds.classes) == 100
    np.testing.assert_allclose(ds[2][0].numpy(), pixels[2].reshape(3, 32, 32) / 255.0, rtol=1e-6)


def test_cifar_corrupt(tmp_path):
    folder, _ = make_cifar(str(tmp_path))
    path = os.path.join(folder, "data_batch_3.bin")
    with open(path, "rb") as f:
        data = bytearray(f.read())
    corrupt(path, bytes(data[:-100]))
    with pytest.raises(DatasetFileError, match="not a whole number of 3073-byte records") as err:
        CIFAR10(str(tmp_path))
    assert path in str(err.value)
    data[3073 * 2] = 10  # label of record 2
    corrupt(path, bytes(data))
    with pytest.raises(DatasetFileError, match=r"label 10 of record 2 is out of range 0\.\.9"):
        CIFAR10(str(tmp_path))
    os.remove(path)
    with pytest.raises(FileNotFoundError, match="data_batch_3.bin"):
        CIFAR10(str(tmp_path))
    folder, _ = make_cifar(str(tmp_path), hundred=True)
    path = os.path.join(folder, "test.bin")
    with open(path, "rb") as f:
        data = bytearray(f.read())
    data[0] = 25  # coarse label
    corrupt(path, bytes(data))
    with pytest.raises(DatasetFileError, match="coarse label"):
        CIFAR100(str(tmp_path), train=False)


# --- ImageFolder -----------------------------------------------------------------------------

def test_image_folder(tmp_path):
    Image = pytest.importorskip("PIL.Image", reason="Pillow is not installed (pip install 'lamina[image]')")
    rng = np.random.default_rng(0)
    arrays = {}
    for cls in ("dog", "cat"):
        os.makedirs(tmp_path / cls)
        for k in range(2):
            a = rng.integers(0, 256, size=(5, 7, 3), dtype=np.uint8)
            Image.fromarray(a).save(tmp_path / cls / f"{k}.png")
            arrays[(cls, k)] = a
    Image.fromarray(np.zeros((5, 7), dtype=np.uint8)).save(tmp_path / "cat" / "gray.bmp")
    (tmp_path / "cat" / "notes.txt").write_text("not an image")
    ds = ImageFolder(str(tmp_path))
    assert ds.classes == ["cat", "dog"] and ds.class_to_idx == {"cat": 0, "dog": 1}
    assert len(ds) == 5 and ds.targets == [0, 0, 0, 1, 1]
    img, label = ds[3]
    assert label == 1 and img.shape == (3, 5, 7)
    np.testing.assert_allclose(img.numpy(), arrays[("dog", 0)].transpose(2, 0, 1) / 255.0, rtol=1e-6)
    assert ds[2][0].shape == (3, 5, 7)  # grayscale converted to RGB
    (tmp_path / "dog" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    ds = ImageFolder(str(tmp_path))
    bad = [i for i, (p, _) in enumerate(ds.samples) if p.endswith("broken.png")][0]
    with pytest.raises(DatasetFileError, match="cannot read image .*broken.png"):
        ds[bad]
    os.makedirs(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="empty"):
        ImageFolder(str(tmp_path))
    assert len(ImageFolder(str(tmp_path), allow_empty=True)) == 6


def test_image_folder_errors_without_images(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ImageFolder(str(tmp_path / "nope"))
    with pytest.raises(FileNotFoundError, match="class folder"):
        ImageFolder(str(tmp_path))


def test_missing_pillow_message(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_pil(name, *args, **kwargs):
        if name == "PIL" or name.startswith("PIL."):
            raise ImportError("No module named 'PIL'")
        return real_import(name, *args, **kwargs)

    os.makedirs(tmp_path / "a")
    (tmp_path / "a" / "x.png").write_bytes(b"")
    ds = ImageFolder(str(tmp_path))
    monkeypatch.setattr(builtins, "__import__", no_pil)
    with pytest.raises(ImportError, match=r'pip install "lamina\[image\]"'):
        ds[0]
