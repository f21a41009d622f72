"""Rules → jobs: list tags where a rule needs them, select, name the destinations, check the plan.

Planning is pure apart from the ``list_tags`` coroutine it is given (the caller binds it to a
transport and credentials), so it runs the same against a registry or a fake.

* Fixed tags and digests need no listing. All-tags, regex and semver rules list their source
  repository once, however many rules share it (at most ``concurrency`` listings at a time).
* Each selected tag ``t`` becomes ``source:t → destination:t`` (``t`` + ``Rule.tag_suffix`` when set),
  or ``→ destination:NEW`` when the rule renames a single tag. Each digest ``d`` becomes
  ``source@d → destination@d`` (the image is pushed by digest, untagged), or ``→ destination:NEW``.
* A tag the registry lists but that is not a valid tag is skipped with a warning (skopeo does the
  same); a rule that selects nothing is logged, not an error (tags come and go).
* Regexes are searched, not anchored (Go's ``MatchString``, which both tools use); semver constraints
  follow :mod:`ferry.plan.semver` and skip tags that are not versions.

:func:`check_plan` then refuses two different sources bound for one destination reference, naming
both sources and the rules they came from, and merges identical duplicates (the same copy asked for
twice, e.g. by overlapping rules). Digest-addressed destinations fed from the same digest are the same
content, so they merge too.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING

from ferry.errors import ConfigError, FerryError, UsageError
from ferry.plan.model import Job, Route, Rule
from ferry.refs import ImageRef, RegistryRef, is_tag

if TYPE_CHECKING:
    from ferry.plan.semver import Constraint

__all__ = ["ListTags", "check_plan", "expand"]

log = logging.getLogger(__name__)

ListTags = Callable[[RegistryRef], Awaitable[list[str]]]


def _needs_listing(rule: Rule) -> bool:
    select = rule.select
    return not (select.tags or select.digests)


def _check_rule(rule: Rule) -> Constraint | None:
    """Refuse rules that cannot name their destinations; return the parsed semver constraint."""
    origin = rule.origin or str(rule.source)
    if rule.destination.digest:
        raise ConfigError(f"{origin}: a destination names a repository or a tag, not a digest")
    if rule.destination.tag:
        fixed = len(rule.select.tags) + len(rule.select.digests)
        if fixed != 1:
            what = "several tags" if fixed > 1 else "tags by listing the repository"
            raise ConfigError(
                f"{origin}: the destination renames to one tag ({rule.destination.tag}) but the rule selects {what}"
            )
    elif rule.tag_suffix and rule.select.digests:
        raise ConfigError(f"{origin}: a tag suffix cannot apply to images selected by digest")
    if rule.select.semver is None:
        return None
    from ferry.plan.semver import SemverError, parse_constraint  # only semver rules need it (6 ms to import)

    try:
        return parse_constraint(rule.select.semver)
    except SemverError as err:
        raise ConfigError(f"{origin}: {err}") from None


async def _list_all(
    repos: list[RegistryRef],
    list_tags: ListTags,
    concurrency: int,
    failures: dict[RegistryRef, FerryError] | None = None,
) -> dict[RegistryRef, list[str]]:
    gate = asyncio.Semaphore(max(1, concurrency))

    async def one(repo: RegistryRef) -> list[str]:
        async with gate:
            if failures is None:
                return list(await list_tags(repo))
            try:
                return list(await list_tags(repo))
            except FerryError as err:
                if isinstance(err, UsageError):
                    raise
                failures[repo] = err
                return []

    tasks = [asyncio.ensure_future(one(repo)) for repo in repos]
    try:
        results = await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:  # one listing failed: stop the others before reporting it
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    return dict(zip(repos, results, strict=True))


def _select(rule: Rule, tags: list[str], constraint: Constraint | None) -> list[str]:
    select = rule.select
    chosen: list[str] = []
    seen: set[str] = set()
    for tag in tags:
        if tag in seen:
            continue
        seen.add(tag)
        if not is_tag(tag):
            log.warning("%s: skipping %r listed by %s: not a valid tag", rule.origin, tag, rule.source)
            continue
        if select.regex is not None and not select.matches_regex(tag):
            continue
        if constraint is not None and not constraint.matches(tag):
            continue
        chosen.append(tag)
    return chosen


def _jobs_for(rule: Rule, tags: list[str]) -> list[Job]:
    src, dest = rule.source.repo_ref(), rule.destination
    route = Route(src, dest, rule.origin)  # what the rule's jobs of one name on both sides share
    jobs: list[Job] = []
    for tag in tags:
        if dest.tag:
            jobs.append(Job(src.with_tag(tag), dest, rule.origin))
        elif not rule.tag_suffix:
            jobs.append(Job.named(route, tag))  # refs made when asked: a small object a tag
        else:
            new_tag = tag + rule.tag_suffix
            if not is_tag(new_tag):
                raise ConfigError(f"{rule.origin}: tag {tag!r} with suffix {rule.tag_suffix!r} is not a valid tag")
            jobs.append(Job(src.with_tag(tag), dest.with_tag(new_tag), rule.origin))
    for digest in rule.select.digests:
        jobs.append(Job(src.with_digest(digest), dest, rule.origin) if dest.tag
                    else Job.named(route, digest))
    return jobs


async def expand(
    rules: Iterable[Rule],
    list_tags: ListTags,
    *,
    concurrency: int = 32,
    failures: dict[RegistryRef, FerryError] | None = None,
) -> list[Job]:
    """Turn rules into jobs in rule order (tags in the order given or listed, then digests).

    Errors from ``list_tags`` propagate unchanged, unless ``failures`` is given: then a repository
    whose listing fails (unreadable, missing, unreachable) is recorded there with its error and its
    listing rules give no jobs, so the caller can report them as failed and run the others.
    """
    rules = list(rules)
    constraints = [_check_rule(rule) for rule in rules]
    repos: list[RegistryRef] = []
    for rule in rules:
        repo = rule.source.repo_ref()
        if _needs_listing(rule) and repo not in repos:
            repos.append(repo)
    listed = await _list_all(repos, list_tags, concurrency, failures) if repos else {}

    jobs: list[Job] = []
    for rule, constraint in zip(rules, constraints, strict=True):
        if _needs_listing(rule):
            if failures is not None and rule.source.repo_ref() in failures:
                continue  # the caller reports it
            tags = _select(rule, listed[rule.source.repo_ref()], constraint)
        else:
            tags = list(dict.fromkeys(rule.select.tags))
        found = _jobs_for(rule, tags)
        if not found:
            log.warning("%s: no tags of %s match; nothing to copy", rule.origin, rule.source)
        jobs.extend(found)
    return jobs


def check_plan(jobs: Iterable[Job]) -> list[Job]:
    """Merge duplicate jobs; refuse two different sources for one destination (ConfigError)."""
    by_destination: dict[ImageRef, dict[str, Job]] = {}  # repository → tag or digest: no key string per job
    result: list[Job] = []
    for job in jobs:
        repo, name = job.destination_parts()
        named = by_destination.setdefault(repo, {})
        first = named.get(name)
        if first is None:
            named[name] = job
            result.append(job)
            continue
        if first.source == job.source:
            continue
        if job.destination.digest and first.source.digest == job.source.digest:
            continue  # the same bytes, whichever repository they come from
        a = f"{first.source} ({first.origin})" if first.origin else str(first.source)
        b = f"{job.source} ({job.origin})" if job.origin else str(job.source)
        raise ConfigError(f"two sources go to {job.destination}: {a} and {b}",
                          hint="give one of them another destination")
    return result
