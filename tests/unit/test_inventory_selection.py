from __future__ import annotations

import pytest

from ferry.errors import UsageError
from ferry.harbor.client import encode_repo
from ferry.plan.inventory import Selection, parse_maps


def test_filters_select_exactly_what_they_say() -> None:
    sel = Selection(projects=("team-*",), exclude_projects=("team-old",), repos=("svc/*",), tags=("v*",),
                    exclude_tags=("*-rc",))
    assert sel.project_selected("team-a") and not sel.project_selected("team-old") and not sel.project_selected("x")
    assert sel.repo_selected("team-a/svc/api") and not sel.repo_selected("team-a/lib/api")
    assert sel.tag_selected("v1.2") and not sel.tag_selected("v1.3-rc") and not sel.tag_selected("latest")


def test_map_renames_projects_only() -> None:
    sel = Selection(project_map=parse_maps(["old=new"]))
    assert sel.dest_repository("old/team/app") == "new/team/app"
    assert sel.dest_repository("other/app") == "other/app"


@pytest.mark.parametrize("bad", ["old", "=new", "a/b=c", "a="])
def test_bad_maps_are_usage_errors(bad: str) -> None:
    with pytest.raises(UsageError):
        parse_maps([bad])


def test_repository_names_are_encoded_twice() -> None:
    assert encode_repo("team/app") == "team%252Fapp"
    assert encode_repo("app") == "app"
