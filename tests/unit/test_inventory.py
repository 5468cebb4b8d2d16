from typing import Any

import pytest

from kubectl_gitops.core.inventory import Inventory, partition, salvage, stale, union
from kubectl_gitops.core.objects import ObjectRef

NS = ObjectRef("", "v1", "Namespace", "", "shop")
DEP = ObjectRef("apps", "v1", "Deployment", "shop", "web")
SVC = ObjectRef("", "v1", "Service", "shop", "web")
HPA1 = ObjectRef("autoscaling", "v1", "HorizontalPodAutoscaler", "shop", "web")
HPA2 = HPA1.with_version("v2")


def test_inventory_is_sorted_and_deduplicated():
    inv = Inventory([SVC, DEP, NS, DEP])
    assert inv.entries == (NS, SVC, DEP)  # id order: core group "" sorts before "apps"
    assert len(inv) == 3
    assert list(inv) == [NS, SVC, DEP]


def test_same_identity_keeps_the_later_version():
    assert Inventory([HPA1, HPA2]).entries == (HPA2,)


def test_status_round_trip_in_flux_format():
    inv = Inventory([DEP, NS])
    status = inv.to_status()
    assert status == {"entries": [{"id": "_shop__Namespace", "v": "v1"}, {"id": "shop_web_apps_Deployment", "v": "v1"}]}
    assert Inventory.from_status(status) == inv


@pytest.mark.parametrize("status", [None, {}, {"entries": None}, {"entries": []}])
def test_from_status_empty(status):
    assert Inventory.from_status(status) == Inventory()


def test_from_status_rejects_malformed_entries():
    with pytest.raises(ValueError):
        Inventory.from_status({"entries": [{"v": "v1"}]})
    with pytest.raises(ValueError):
        Inventory.from_status({"entries": [{"id": "nonsense", "v": "v1"}]})


def test_stale_is_old_minus_new():
    old, new = Inventory([NS, DEP, SVC]), Inventory([NS, DEP])
    assert stale(old, new) == (SVC,)
    assert stale(new, old) == ()


def test_version_bump_is_not_stale():
    assert stale(Inventory([HPA1]), Inventory([HPA2])) == ()


def test_contains_by_identity():
    inv = Inventory([HPA1])
    assert HPA2 in inv
    assert SVC not in inv
    assert "shop_web_apps_Deployment" not in inv


def test_merge_keeps_failed_deletes():
    new = Inventory([NS, DEP])
    kept = new.merge([SVC])
    assert kept.entries == (NS, SVC, DEP)
    assert new.entries == (NS, DEP)  # immutable


def test_without():
    assert Inventory([NS, DEP, SVC]).without([DEP.with_version("v1beta1")]).entries == (NS, SVC)


# ---------------------------------------------------------------- hardening: strangers, concurrency, damage



def _ref(name: str, version: str = "v1") -> ObjectRef:
    return ObjectRef("", version, "ConfigMap", "ns", name)


def test_union_keeps_every_object_either_run_recorded() -> None:
    # Run A (rev1: a, b) and run B (rev2: a, c) started from the same inventory {a}.
    a_done = Inventory([_ref("a"), _ref("b")])
    b_done = Inventory([_ref("a", "v2"), _ref("c")])
    merged = union(a_done, b_done)
    assert [r.name for r in merged] == ["a", "b", "c"]  # nothing orphaned
    assert next(r for r in merged if r.name == "a").version == "v1"  # ours wins on the version


def test_partition_leaves_strangers_out() -> None:
    live = {_ref("mine").key: {"m": 1}, _ref("stranger").key: {"s": 1}}
    mine, strangers = partition(live, [_ref("mine").key, _ref("absent").key])
    assert mine == {_ref("mine").key: {"m": 1}}
    assert strangers == [_ref("stranger").key]


@pytest.mark.parametrize("status", ["garbage", {"entries": "garbage"}, {"entries": [{"id": "x"}]},
                                    {"entries": [1]}])
def test_a_damaged_inventory_is_a_value_error_and_salvage_keeps_what_reads(status: Any) -> None:
    with pytest.raises(ValueError):
        Inventory.from_status(status)
    assert len(salvage(status)) == 0
    good = {"entries": [{"id": "ns_a__ConfigMap", "v": "v1"}, {"id": "garbage", "v": "v1"}]}
    assert [r.name for r in salvage(good)] == ["a"]
