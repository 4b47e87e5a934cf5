"""heeldrop score --engine dask: the same bytes as the pandas engine, from a real cluster."""

import contextlib
import io
from pathlib import Path

import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from distributed import LocalCluster

from service import cli
from service.batch import dask_engine
from service.config import Config


@pytest.fixture(scope="module")
def cluster():
    with LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=False,
        protocol="tcp",
        host="127.0.0.1",
        dashboard_address=None,
    ) as local:
        yield local


def score(src: Path, out: Path, models: Path, *extra: str) -> tuple[int, str]:
    args = cli.parser().parse_args(["score", str(src), "-o", str(out), *extra])
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = args.func(args, Config(models_dir=models))
    return code, err.getvalue()


@pytest.fixture(scope="module")
def messy_csv(tmp_path_factory, cohort_csv):
    """The cohort with malformed lines and a quoted line break planted among its records."""
    lines = cohort_csv.read_text().splitlines()
    lines[3] += ",an extra field"
    lines[500] = lines[500].split(",", 1)[0]
    lines[1200] = lines[1200].replace("sim-", '"sim\n', 1).replace(",", '",', 1)
    lines[2100] = lines[2100].replace("sim-", '"never closed ', 1)
    path = tmp_path_factory.mktemp("messy") / "messy.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_dask_output_is_byte_for_byte_the_pandas_output(cluster, registry, messy_csv, tmp_path):
    models = registry.root.parent
    assert score(messy_csv, tmp_path / "pandas.csv", models, "--chunk-rows", "900")[0] == 0
    code, err = score(
        messy_csv,
        tmp_path / "dask.csv",
        models,
        *("--engine", "dask", "--scheduler", cluster.scheduler_address, "--chunk-rows", "700"),
    )
    assert code == 0
    assert err.strip().endswith("4000 rows: 3997 ok, 3 errors")
    assert (tmp_path / "dask.csv").read_bytes() == (tmp_path / "pandas.csv").read_bytes()


def test_dask_scores_parquet_row_groups_like_the_pandas_engine(
    cluster, registry, cohort_csv, tmp_path
):
    models = registry.root.parent
    pq.write_table(pacsv.read_csv(cohort_csv), tmp_path / "in.parquet", row_group_size=1000)
    src = tmp_path / "in.parquet"
    assert score(src, tmp_path / "pandas.parquet", models)[0] == 0
    address = cluster.scheduler_address
    assert (
        score(src, tmp_path / "dask.parquet", models, "--engine", "dask", "--scheduler", address)[0]
        == 0
    )
    assert pq.read_table(tmp_path / "dask.parquet").equals(
        pq.read_table(tmp_path / "pandas.parquet")
    )


def test_an_unreachable_scheduler_exits_2_and_writes_nothing(
    registry, cohort_csv, tmp_path, monkeypatch
):
    monkeypatch.setattr(dask_engine, "CONNECT_TIMEOUT", "1s")
    code, err = score(
        cohort_csv,
        tmp_path / "out.csv",
        registry.root.parent,
        *("--engine", "dask", "--scheduler", "tcp://127.0.0.1:9"),
    )
    assert code == 2 and "cannot reach the Dask scheduler" in err
    assert not (tmp_path / "out.csv").exists()


def test_dask_reads_a_european_export_as_the_pandas_engine_does(
    cluster, registry, cohort_csv, tmp_path
):
    """The separator, decimal mark and typed headers reach the workers: same bytes out."""
    from tests.batch.test_score import respell

    shop = tmp_path / "shop.csv"
    respell(cohort_csv, shop, ";", ",", labels=True)
    models, address = registry.root.parent, cluster.scheduler_address
    assert score(shop, tmp_path / "pandas.csv", models, "--chunk-rows", "900")[0] == 0
    code, err = score(shop, tmp_path / "dask.csv", models, "--engine", "dask",
                      "--scheduler", address, "--chunk-rows", "700")  # fmt: skip
    assert code == 0 and "separator ';' (detected), decimal comma (detected)" in err
    assert err.strip().endswith("4000 rows: 4000 ok, 0 errors")
    assert (tmp_path / "dask.csv").read_bytes() == (tmp_path / "pandas.csv").read_bytes()
