"""Another random future of a world from a forecast date on: what no forecast made on that date can know.

A future is a (future seed, forecast date F) pair added to a world's seed. Everything that happened before F is
the world's own, byte for byte; what happens from F on is drawn again:

- **Deals known before F** (created, or first touched by an activity, before F) that are open at F continue from
  where they stand at F. Their stage at F, the stages they went through and their latent health stay; the rest
  is redrawn from a stream keyed by (seed, future seed, month): whether they advance from each remaining stage,
  `sigmoid(advance_logit_k + h)`, the dwell left in the current stage, later dwells, regressions, amounts of
  stages not reached yet, forecast categories of later stages, close-date pushes after F, the close date and the
  quarter-end push. A deal created after F from a lead worked before F is drawn afresh, health included.
- **What the push tells**: a win a rep only holds back for the quarter's last days was won before F, and stays as
  the world drew it. A deal open at F is not one of the wins reps pulled into the days before F, so a continued
  path whose push would have closed it before F is drawn again (rejection sampling). Without this, futures from a
  quarter's first day booked too much in that quarter (see docs/benchmarks.md).
- **The current stage's dwell**: a deal that has already spent `e` days in its stage is known to dwell longer than
  `e`. So the chance to advance from it is updated on that (lost deals dwell `LOST_DWELL_FACTOR` times longer, so
  surviving a long time in a stage is a little bad news), and its dwell is drawn from the log-normal dwell
  truncated below at `e` (the exact conditional law, by inverting the normal CDF).
- **Months that start before F** are the world's months; their activities before F stay, those of continued deals
  after F are dropped and drawn again for the continued stage visits.
- **New business from F on** (leads and deals created from F on) comes from the world's months drawn again with a
  stream keyed also by the future seed, from F on. The world's own month can place a few records days before its
  first day (a meeting booked before its deal was created, an early call in Sydney on the 1st is the evening
  before in UTC): those records, and the leads and deals they touch, are kept as the world's, since they happened
  before F.

What stays as the world drew it (a simplification, documented): a lead created before F keeps its whole life
(when it converts, is closed or deleted, its prospecting calls), so the deal a converted lead becomes exists in
every future, though its life is drawn afresh; and the call records not tied to any CRM record that the world drew
around continued deals after F are dropped (each future draws its own).

Record numbers drawn by a future sit in ranges of their own (`CONTINUATION_NUMBERS`, `FUTURE_MONTH_NUMBERS`), and
its phone numbers come from a book of its own (`PhoneBook.upper_half`), so the world's ids and numbers before F do
not move.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import log_ndtr, ndtr, ndtri

from simulator.deals import (
    CHANGE_COLUMNS,
    LOST_DWELL_FACTOR,
    MAX_DWELL_DAYS,
    MIN_DWELL_DAYS,
    Lifecycle,
    MonthSimulator,
    World,
    chain_visits,
    close_date_pushes,
    forecast_categories,
    month_starts,
    sigmoid,
    stage_path,
)

STREAM_CONTINUATION = 11  # key of the stream that continues a month's deals after F
CONTINUATION_NUMBERS = 10_000_000_000  # record numbers of rows a continuation draws (ids are 62**6 ~ 5.7e10)
FUTURE_MONTH_NUMBERS = 20_000_000_000  # record numbers of the months drawn again from F on
# A month's records start at most about 9 days before its first day (a rescheduled meeting can be booked up to 7
# days before its deal was created, which can fall a day early for a weekend and a day earlier in UTC; the demo
# world's earliest is 5 days): a month starting this long after F has nothing before F.
SPILL_DAYS = 15
DWELL_SIGMA = 0.55  # log-normal spread of a stage dwell (MonthSimulator._draw_lifecycle)
MAX_REDRAWS = 40  # rounds of rejection sampling of a continued deal's path (each rejects at most a third)
PATH_FIELDS = {"won": bool, "last_stage": np.int64, "regress_at": np.int64, "visits": np.int64,
               "natural_close": "datetime64[s]", "closed": "datetime64[s]"}  # fmt: skip
ACTIVITY_TABLES = {  # table: (time it is first written, deal column, person column)
    "calls": ("started_at", "opportunity_id", "who_id"),
    "tasks": ("created_at", "what_id", "who_id"),
    "meetings": ("created_at", "opportunity_id", None),
    "crm_events": ("created_at", "what_id", None),
}


@dataclass(frozen=True)
class Future:
    seed: int
    forecast_date: dt.date

    @property
    def since(self) -> np.datetime64:
        return np.datetime64(self.forecast_date, "s")


def validate_future(
    future_seed: int | None, forecast_date: dt.date | None, start: dt.date, end: dt.date, faults: bool = False
) -> None:
    """Both or neither; a seed numpy accepts; a date inside the world's history (after its first day); no faults."""
    if (future_seed is None) != (forecast_date is None):
        raise ValueError("--future-seed and --forecast-date go together: give both or neither")
    if future_seed is None:
        return
    if faults:
        # measured on tiny: 22 of the 493 files dated before the forecast date differed
        raise ValueError(
            "--faults cannot be combined with --future-seed: defects are planted over the whole history, so the "
            "files before the forecast date would not be the world's"
        )
    if future_seed < 0:
        raise ValueError(f"--future-seed must be a non-negative integer, not {future_seed}")
    if not start < forecast_date <= end:
        raise ValueError(f"--forecast-date {forecast_date} must be after {start} and no later than {end}")


# ---------------------------------------------------------------- which deals and leads are known before F
def first_touch(frames: dict[str, pd.DataFrame]) -> tuple[pd.Series, pd.Series]:
    """When each deal and each lead first shows in the month's records: its creation or an earlier activity."""
    lead_ids = frames["leads"].lead_id
    deal_times = [frames["opportunities"].set_index("opportunity_id").created_at.astype("datetime64[s]")]
    lead_times = [frames["leads"].set_index("lead_id").created_at.astype("datetime64[s]")]
    for table, (time, deal, person) in ACTIVITY_TABLES.items():
        frame = frames[table]
        at = frame[time].astype("datetime64[s]")
        linked = frame[deal].notna()
        deal_times.append(at[linked].groupby(frame[deal][linked]).min())
        if person is not None:
            of_lead = ~linked & frame[person].isin(lead_ids)
            lead_times.append(at[of_lead].groupby(frame[person][of_lead]).min())
    deal_touch = pd.concat(deal_times).groupby(level=0).min()
    lead_touch = pd.concat(lead_times).groupby(level=0).min()
    return deal_touch, lead_touch


def known_before(
    opps: pd.DataFrame, deal_touch: pd.Series, lead_touch: pd.Series, since: np.datetime64
) -> tuple[np.ndarray, set[str]]:
    """(mask of the month's deals, ids of its leads) known before `since`, and the deals converted from such leads."""
    touched = deal_touch.reindex(opps.opportunity_id).to_numpy().astype("datetime64[s]") < since
    lead_known = lead_touch[lead_touch.to_numpy().astype("datetime64[s]") < since].index
    leads = set(lead_known) | set(opps.lead_id[touched].dropna())
    deals = touched | opps.lead_id.isin(leads).to_numpy()
    return deals, leads


def born_after(leads: pd.DataFrame, opps: pd.DataFrame, since: np.datetime64) -> tuple[np.ndarray, set[str]]:
    """(mask of deals, ids of leads) of a month drawn again that belong to the future: created from `since` on, and
    for a converted lead's deal, the lead too (a lead created earlier is the world's)."""
    new_leads = set(leads.lead_id[leads.created_at.to_numpy().astype("datetime64[s]") >= since])
    created = opps.created_at.to_numpy().astype("datetime64[s]") >= since
    from_old_lead = opps.lead_id.notna().to_numpy() & ~opps.lead_id.isin(new_leads).to_numpy()
    return created & ~from_old_lead, new_leads


# ---------------------------------------------------------------- continuing deals
def still_open(deals: np.ndarray, life: Lifecycle, since: np.datetime64) -> np.ndarray:
    """The `deals` whose fate is not sealed before `since`: not closed, and not a win the rep is only holding
    back for the quarter's last days."""
    return deals & (life.closed >= since) & (life.natural_close >= since)


def continuation_rng(world: World, month_index: int, future: Future) -> np.random.Generator:
    return np.random.default_rng([world.seed, STREAM_CONTINUATION, month_index, future.seed])


def continue_lifecycle(
    sim: MonthSimulator,
    opps: pd.DataFrame,
    life: Lifecycle,
    redrawn: np.ndarray,
    since: np.datetime64,
    rng: np.random.Generator,
) -> Lifecycle:
    """`life` with the `redrawn` deals' lives from `since` on drawn again (see the module docstring)."""
    cfg = sim.cfg
    stages = cfg.stages
    n_stages = len(stages)
    deals = np.flatnonzero(redrawn)
    m = len(deals)
    created = life.created[deals]
    known = created < since
    fresh = ~known
    segment = opps.segment_index.to_numpy()[deals]
    cycle_scale = np.array([s.cycle_scale for s in cfg.segments])[segment]
    median_days = np.array([s.median_days for s in stages])
    advance_logit = np.array([s.advance_logit for s in stages])

    # a deal that does not exist yet at F: its latent state is future too
    engagement = life.engagement[deals].copy()
    health = life.health[deals].copy()
    engagement[fresh] = rng.normal(0.0, 1.0, fresh.sum())
    luck = rng.normal(0.0, cfg.luck_sd, fresh.sum())
    health[fresh] = life.shift[deals][fresh] + cfg.engagement_weight * engagement[fresh] + luck

    # where each known deal stands at F: its visit under way, that stage, the highest stage reached, time in it
    first_visit = np.searchsorted(life.visit_deal, deals, side="left")
    end_visit = np.searchsorted(life.visit_deal, deals, side="right")
    begun = np.concatenate([[0], np.cumsum(life.entered < since)])
    current = first_visit + (begun[end_visit] - begun[first_visit]) - 1  # last visit entered before F
    current = np.where(known, current, first_visit)
    highest = pd.Series(life.visit_stage).groupby(life.visit_deal).cummax().to_numpy()
    stage_now = np.where(known, life.visit_stage[current], 0)
    top = np.where(known, highest[current], 0)
    regressed = known & (life.regress_at[deals] >= 0) & (current - first_visit > life.regress_at[deals])
    entered_now = np.where(known, life.entered[current], created)
    elapsed = (since - entered_now).astype(np.int64) / 86400.0  # > 0 for known deals

    # the outcome: stages below the highest one reached are replayed after a step back; from there on each is a draw
    p_advance = sigmoid(advance_logit[None, :] + health[:, None])
    pending = np.flatnonzero(known & (stage_now == top))
    if len(pending):
        # survival in the stage so far, if it will advance and if it will be lost there (lost deals linger longer)
        median_now = median_days[stage_now[pending]] * cycle_scale[pending] * np.exp(-0.3 * health[pending])
        log_e = np.log(elapsed[pending])
        survive_advance = log_ndtr(-(log_e - np.log(median_now)) / DWELL_SIGMA)
        survive_lost = log_ndtr(-(log_e - np.log(LOST_DWELL_FACTOR * median_now)) / DWELL_SIGMA)
        p = p_advance[pending, stage_now[pending]]
        p_advance[pending, stage_now[pending]] = sigmoid(np.log(p / (1 - p)) + survive_advance - survive_lost)

    def draw_paths(rows: np.ndarray) -> dict[str, np.ndarray]:
        """Outcome, stage visits, dwells and close of the deals `rows`; visits in deal order."""
        k = len(rows)
        advanced = (rng.random((k, n_stages)) < p_advance[rows]) | (np.arange(n_stages)[None, :] < top[rows, None])
        not_advanced = ~advanced
        last_stage = np.where(not_advanced.any(axis=1), not_advanced.argmax(axis=1), n_stages - 1)
        won = advanced.all(axis=1)
        # a step back, if none happened yet: each stage from 2 up to the last has an equal chance, as at creation
        reached = last_stage + 1
        now = stage_now[rows]
        lowest = np.maximum(2, now)
        eligible = np.where(~regressed[rows] & (now == top[rows]), np.maximum(reached - lowest, 0), 0)
        p_regress = np.where(reached >= 3, cfg.regression_share * eligible / np.maximum(reached - 2, 1), 0.0)
        regress = rng.random(k) < p_regress
        regress_at = np.where(regress, lowest + (rng.random(k) * np.maximum(eligible, 1)).astype(int), -1)
        # the visits from the one under way at F (or the first) to the close
        visits = (last_stage - now + 1) + 2 * regress
        deal_of_visit = np.repeat(np.arange(k), visits)
        position = now[deal_of_visit] + np.arange(visits.sum()) - np.repeat(np.cumsum(visits) - visits, visits)
        stage_of_visit = stage_path(position, regress_at[deal_of_visit])
        is_first, is_last = _ends(deal_of_visit)
        typical = (
            median_days[stage_of_visit] * cycle_scale[rows][deal_of_visit] * np.exp(-0.3 * health[rows][deal_of_visit])
        )
        typical = np.where(is_last & ~won[deal_of_visit], typical * LOST_DWELL_FACTOR, typical)
        dwell_days = typical * np.exp(rng.normal(0.0, DWELL_SIGMA, len(position)))
        under_way = np.flatnonzero(is_first & known[rows][deal_of_visit])
        # the visit under way: its dwell given it has lasted `elapsed` already, from the truncated log-normal
        z_elapsed = np.log(elapsed[rows][deal_of_visit[under_way]] / typical[under_way]) / DWELL_SIGMA
        u = 1.0 - rng.random(len(under_way))  # in (0, 1]
        z = -ndtri(u * ndtr(-z_elapsed))
        z = np.where(np.isfinite(z) & (z > z_elapsed), z, z_elapsed)
        dwell_days[under_way] = typical[under_way] * np.exp(DWELL_SIGMA * z)
        dwell_days = np.clip(dwell_days, MIN_DWELL_DAYS, MAX_DWELL_DAYS)
        dwell = (dwell_days * 86400).astype(np.int64)
        elapsed_seconds = (since - entered_now[rows]).astype(np.int64)
        dwell[under_way] = np.maximum(dwell[under_way], elapsed_seconds[deal_of_visit[under_way]])
        entered = chain_visits(entered_now[rows], visits, dwell.astype("timedelta64[s]"))
        natural_close = entered[is_last] + dwell[is_last].astype("timedelta64[s]")
        closed = sim._quarter_end_push(natural_close, won, entered[is_last], rng=rng)
        return {
            "won": won, "last_stage": last_stage, "regress_at": regress_at, "visits": visits,
            "natural_close": natural_close, "closed": closed, "visit_row": rows[deal_of_visit],
            "stage": stage_of_visit, "dwell": dwell,
        }  # fmt: skip

    # A deal open at F is not one of the wins a rep pulled into the last days of the quarter before F: a path that
    # would have been closed before F is drawn again (rejection sampling, so the accepted ones follow the law
    # conditional on being open at F). A pull is taken a third of the time, so few rounds are needed.
    path_of = {name: np.empty(m, dtype=dtype) for name, dtype in PATH_FIELDS.items()}
    per_visit: list[dict[str, np.ndarray]] = []
    rows = np.arange(m)
    for attempt in range(MAX_REDRAWS):
        paths = draw_paths(rows)
        if attempt == MAX_REDRAWS - 1:  # not reached in practice; keeps the close at F or after
            paths["closed"] = np.maximum(paths["closed"], paths["natural_close"])
        accepted = paths["closed"] >= since
        for name in PATH_FIELDS:
            path_of[name][rows[accepted]] = paths[name][accepted]
        keep = np.isin(paths["visit_row"], rows[accepted])
        per_visit.append({name: paths[name][keep] for name in ("visit_row", "stage", "dwell")})
        rows = rows[~accepted]
        if not len(rows):
            break
    order = np.argsort(np.concatenate([part["visit_row"] for part in per_visit]), kind="stable")
    deal_of_visit = np.concatenate([part["visit_row"] for part in per_visit])[order]
    stage_of_visit = np.concatenate([part["stage"] for part in per_visit])[order]
    dwell = np.concatenate([part["dwell"] for part in per_visit])[order].astype("timedelta64[s]")
    won, last_stage, new_regress_at = path_of["won"], path_of["last_stage"], path_of["regress_at"]
    natural_close, closed = path_of["natural_close"], path_of["closed"]
    is_first, is_last = _ends(deal_of_visit)
    under_way = np.flatnonzero(is_first & known[deal_of_visit])
    entered = chain_visits(entered_now, path_of["visits"], dwell)
    exited = np.concatenate([entered[1:], [np.datetime64("NaT")]]).astype("datetime64[s]")
    exited[is_last] = closed

    # amounts: the first stays for a known deal; stages it has not reached yet are drawn again
    amount_at_stage = life.amount_at_stage[deals].copy()
    median_amount = np.array([s.median_amount_usd for s in cfg.segments])[segment]
    sigma = np.array([s.amount_sigma for s in cfg.segments])[segment]
    renewal = (opps.opportunity_type.to_numpy()[deals] == "Renewal").astype(float)
    amount_usd = median_amount * np.exp(rng.normal(0.0, sigma, m)) * (1.0 - 0.2 * renewal)
    step = np.where(segment == 0, 10.0, 100.0)
    rate = sim.world_fx(opps.currency.to_numpy()[deals], created)
    amount0 = np.where(fresh, np.maximum(np.round(amount_usd / rate / step) * step, step), amount_at_stage[:, 0])
    revision = np.where(rng.random(m) < 0.5, np.exp(rng.normal(0.05, 0.25, m)), 1.0)
    discount = np.where(rng.random(m) < 0.35, rng.uniform(0.85, 1.0, m), 1.0)
    revised = np.where(top < 2, amount0 * revision, amount_at_stage[:, 2])
    amount_at_stage[:, 0] = amount_at_stage[:, 1] = amount0
    amount_at_stage[:, 2] = np.where(top < 2, np.round(revised / step) * step, amount_at_stage[:, 2])
    amount_at_stage[:, 3] = np.where(top < 3, np.round(revised * discount / step) * step, amount_at_stage[:, 3])

    # forecast categories of the stages entered from F on; the one under way keeps the rep's call
    optimism = sim.user_optimism[life.owner[deals]]
    category = forecast_categories(
        stage_of_visit, optimism[deal_of_visit] + rng.normal(0.0, 1.0, len(stage_of_visit)), rng
    )
    category[under_way] = life.category[current[deal_of_visit[under_way]]]

    # expected close dates: a fresh deal's set at creation; a known deal's pushes after F continue from its date at F
    expected_cycle = (
        0.55 * cycle_scale * sum(s.median_days for s in stages) * np.exp(-0.3 * optimism + rng.normal(0.0, 0.3, m))
    )
    fresh_close = (created + (expected_cycle * 86400).astype("timedelta64[s]")).astype("datetime64[D]")
    month_end = (fresh_close.astype("datetime64[M]") + 1).astype("datetime64[D]") - 1
    fresh_close = np.where(rng.random(m) < 0.4, month_end, fresh_close)
    expected_close = np.where(fresh, fresh_close, life.expected_close[deals])
    kept_push = ~redrawn[life.push_deal] | (life.push_at < since)
    expected_at_f = pd.Series(expected_close, index=deals)
    earlier = kept_push & redrawn[life.push_deal]
    last_push = pd.Series(life.push_to[earlier]).groupby(life.push_deal[earlier]).last()
    expected_at_f.update(last_push)
    expected_at_f = expected_at_f.to_numpy().astype("datetime64[D]")
    # the next push of a known deal comes after F (one before F would be in the world already)
    gap = (since - expected_at_f.astype("datetime64[s]")).astype(np.int64) / 86400.0
    first_gap = np.where(known, np.clip(gap, 0.3, 3.0), 0.3)
    push_rows, push_at, push_to = close_date_pushes(expected_at_f, closed, rng, first_gap_days=first_gap)

    # the month's lifecycle: the other deals as they were, the redrawn ones up to F, then their new course
    kept_visit = ~redrawn[life.visit_deal] | (life.entered < since)
    kept_visit[current[known]] = False
    visit_deal = np.concatenate([life.visit_deal[kept_visit], deals[deal_of_visit]])
    visit_entered = np.concatenate([life.entered[kept_visit], entered])
    order = np.lexsort((visit_entered, visit_deal))

    def per_deal(values: np.ndarray, new: np.ndarray) -> np.ndarray:
        out = values.copy()
        out[deals] = new
        return out

    def per_visit(values: np.ndarray, new: np.ndarray) -> np.ndarray:
        return np.concatenate([values[kept_visit], new])[order]

    return Lifecycle(
        created=life.created,
        owner=life.owner,
        shift=life.shift,
        engagement=per_deal(life.engagement, engagement),
        health=per_deal(life.health, health),
        won=per_deal(life.won, won),
        last_stage=per_deal(life.last_stage, last_stage),
        regress_at=per_deal(life.regress_at, np.where(regressed, life.regress_at[deals], new_regress_at)),
        closed=per_deal(life.closed, closed),
        natural_close=per_deal(life.natural_close, natural_close),
        amount_at_stage=per_deal(life.amount_at_stage, amount_at_stage),
        expected_close=per_deal(life.expected_close, expected_close),
        push_deal=np.concatenate([life.push_deal[kept_push], deals[push_rows]]),
        push_at=np.concatenate([life.push_at[kept_push], push_at]),
        push_to=np.concatenate([life.push_to[kept_push], push_to]),
        visit_deal=visit_deal[order],
        visit_stage=per_visit(life.visit_stage, stage_of_visit),
        entered=visit_entered[order],
        exited=per_visit(life.exited, exited),
        category=per_visit(life.category, category),
    )


def _ends(deal_of_visit: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Masks of each deal's first and last visit, visits in deal order."""
    if not len(deal_of_visit):
        return np.array([], dtype=bool), np.array([], dtype=bool)
    change = deal_of_visit[1:] != deal_of_visit[:-1]
    return np.r_[True, change], np.r_[change, True]


# ---------------------------------------------------------------- a month of a world with a future
def month_frames(world: World, index: int, first: dt.date) -> dict[str, pd.DataFrame]:
    """The frames of one month: the world's own, or with a future, its records known before F and the future's."""
    future = world.future
    if future is None:
        return MonthSimulator(world, index, first).run()
    next_first = (first.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    parts = []
    if first < future.forecast_date + dt.timedelta(days=SPILL_DAYS):
        parts.append(continued_month(MonthSimulator(world, index, first), future))
    if next_first > future.forecast_date:
        parts.append(future_month(future_simulator(world, index, first), future))
    return {name: pd.concat([part[name] for part in parts], ignore_index=True) for name in parts[0]}


def future_simulator(world: World, index: int, first: dt.date) -> MonthSimulator:
    """The month drawn again with the future's seed (used from F on only)."""
    assert world.future is not None
    return MonthSimulator(
        world, index, first, stream=(world.future.seed,), id_offset=FUTURE_MONTH_NUMBERS, phones=world.future_phones
    )


def continued_month(sim: MonthSimulator, future: Future) -> dict[str, pd.DataFrame]:
    """The world's month restricted to what is known before F, its open deals continued after F."""
    frames = sim.run()
    since = future.since
    opps, life = sim.opportunities, sim.lifecycle
    deals, leads = known_before(opps, *first_touch(frames), since)
    redrawn = still_open(deals, life, since)
    drawn: dict[str, pd.DataFrame] = {}
    if redrawn.any():
        rng = continuation_rng(sim.world, sim.month_index, future)
        life = continue_lifecycle(sim, opps, life, redrawn, since, rng)
        changes = sim.opportunity_changes(opps, life)
        later = redrawn[changes.deal.to_numpy()] & (changes["at"].to_numpy() >= since)
        changes = changes[later].copy()
        with sim.drawing_from(rng, CONTINUATION_NUMBERS + sim.id_base) as drawn:
            changes["history_id"] = None
            history = changes.writes_history.to_numpy()
            changes.loc[history, "history_id"] = sim._ids("OpportunityHistory", int(history.sum()))
            visits = np.flatnonzero(redrawn[life.visit_deal] & (life.exited > since))
            sim.deal_activities(opps, life, visits, since=since)
            sim.collect_activities()
        base = sim.changes
        earlier = ~(redrawn[base.deal.to_numpy()] & (base["at"].to_numpy() >= since))
        merged = pd.concat([base[earlier], changes], ignore_index=True)
        merged = merged.sort_values(["deal", "at", "kind_order"], kind="stable")
        frames["opportunity_changes"] = merged[CHANGE_COLUMNS].reset_index(drop=True)
        frames.update(sim.truth_frames(opps, life))
    kept_ids = set(opps.opportunity_id[deals])
    redrawn_ids = set(opps.opportunity_id[redrawn])
    out = _entities(frames, kept_ids, leads)

    def keep_known(table: str, frame: pd.DataFrame) -> np.ndarray:
        at, deal, person = _links(table, frame, frames["leads"].lead_id)
        by_deal = deal.isin(kept_ids) & ~(deal.isin(redrawn_ids) & (at >= since))
        by_lead = person.isin(leads)
        return np.where(deal.notna(), by_deal, np.where(person.notna(), by_lead, at < since))

    activities = _activities(frames, keep_known)
    if drawn:
        fresh = _activities(drawn, lambda table, frame: _links(table, frame, None)[0] >= since)
        activities = {name: pd.concat([activities[name], fresh[name]], ignore_index=True) for name in activities}
    return out | _consistent(activities)


def future_month(sim: MonthSimulator, future: Future) -> dict[str, pd.DataFrame]:
    """The month as the future draws it, from F on: its leads and deals created from F on, records from F on."""
    frames = sim.run()
    since = future.since
    deals, leads = born_after(frames["leads"], sim.opportunities, since)
    kept_ids = set(sim.opportunities.opportunity_id[deals])
    out = _entities(frames, kept_ids, leads)

    def keep_future(table: str, frame: pd.DataFrame) -> np.ndarray:
        at, deal, person = _links(table, frame, frames["leads"].lead_id)
        linked = np.where(deal.notna(), deal.isin(kept_ids), np.where(person.notna(), person.isin(leads), True))
        return linked & (at >= since)

    return out | _consistent(_activities(frames, keep_future))


def _links(table: str, frame: pd.DataFrame, lead_ids: pd.Series | None) -> tuple[pd.Series, pd.Series, pd.Series]:
    """(time first written, deal id, lead id) of each activity row; ids are None where it has none."""
    time, deal, person = ACTIVITY_TABLES[table]
    at = frame[time].astype("datetime64[s]")
    deal_id = frame[deal].where(frame[deal].notna(), None)
    if person is None or lead_ids is None:
        lead_id = pd.Series(None, index=frame.index, dtype=object)
    else:
        lead_id = frame[person].where(deal_id.isna() & frame[person].isin(lead_ids), None)
    return at, deal_id, lead_id


def _entities(frames: dict[str, pd.DataFrame], deals: set[str], leads: set[str]) -> dict[str, pd.DataFrame]:
    opps = frames["opportunities"]
    contacts = set(opps.converted_contact_id[opps.opportunity_id.isin(deals)].dropna())
    return {
        "leads": frames["leads"][frames["leads"].lead_id.isin(leads)],
        "opportunities": opps[opps.opportunity_id.isin(deals)],
        "converted_contacts": frames["converted_contacts"][
            frames["converted_contacts"].converted_contact_id.isin(contacts)
        ],
        **{
            name: frames[name][frames[name].opportunity_id.isin(deals)]
            for name in ("opportunity_changes", "truth_outcomes", "truth_stage_entries")
        },
    }


def _activities(frames: dict[str, pd.DataFrame], keep) -> dict[str, pd.DataFrame]:
    out = {table: frames[table][keep(table, frames[table])] for table in ACTIVITY_TABLES}
    out["meeting_attendees"] = frames["meeting_attendees"]
    return out


def _consistent(activities: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Drop what hangs on a dropped record: the task logging a dropped call, a dropped meeting's attendees and
    CRM event."""
    calls, tasks, meetings = activities["calls"], activities["tasks"], activities["meetings"]
    tasks = tasks[tasks.source_call_id.isna() | tasks.source_call_id.isin(calls.call_id)]
    attendees = activities["meeting_attendees"]
    events = activities["crm_events"]
    return {
        "calls": calls.reset_index(drop=True),
        "tasks": tasks.reset_index(drop=True),
        "meetings": meetings.reset_index(drop=True),
        "meeting_attendees": attendees[attendees.uid.isin(meetings.uid)].reset_index(drop=True),
        "crm_events": events[events.calendar_uid.isin(meetings.uid)].reset_index(drop=True),
    }


# ---------------------------------------------------------------- many futures of one world, outcomes only
@dataclass
class _WorldMonth:
    sim: MonthSimulator
    leads: pd.DataFrame
    opportunities: pd.DataFrame
    lifecycle: Lifecycle
    deal_touch: pd.Series
    lead_touch: pd.Series


class FutureOutcomes:
    """The deals of a world and of its futures, to their close, without writing anything: what `generate` with a
    future seed would write in truth/opportunity_outcomes.csv, for many futures at a fraction of the cost.

    The world's months are drawn once (with their activities, which tell which deals and leads were touched before
    a forecast date) and shared by every future; a future draws only the deals' lives, not their activities (drawn
    after, from the same streams, they cannot change an outcome).
    """

    def __init__(self, world: World, until: dt.date):
        if world.future is not None:
            raise ValueError("FutureOutcomes starts from the world itself, without a future")
        self.world = world
        self.months = month_starts(world.cfg, until)
        self._world_months: list[_WorldMonth] = []

    def _world_month(self, index: int) -> _WorldMonth:
        while len(self._world_months) <= index:  # in order: the world's phone book hands out numbers in sequence
            k = len(self._world_months)
            sim = MonthSimulator(self.world, k, self.months[k])
            frames = sim.run()
            deal_touch, lead_touch = first_touch(frames)
            sim.frames, sim.changes = {}, None  # only the deals' lives are needed from here on
            self._world_months.append(
                _WorldMonth(sim, frames["leads"], sim.opportunities, sim.lifecycle, deal_touch, lead_touch)
            )
        return self._world_months[index]

    def of_world(self) -> pd.DataFrame:
        """Every deal of the world: opportunity_id, created_at, closed_at, is_won, amount, currency."""
        months = [self._world_month(index) for index in range(len(self.months))]
        return pd.concat([_outcomes(month.opportunities, month.lifecycle) for month in months], ignore_index=True)

    def of_future(self, future: Future, until: dt.date | None = None) -> pd.DataFrame:
        """Every deal of the world with `future` from its forecast date on, as `of_world()` describes them; only the
        months up to the one holding `until` if given."""
        since = future.since
        phones = self.world.phones.upper_half()
        parts = []
        for index, first in enumerate(self.months):
            if until is not None and first > until:
                break
            next_first = (first.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
            if first < future.forecast_date + dt.timedelta(days=SPILL_DAYS):
                month = self._world_month(index)
                opps, life = month.opportunities, month.lifecycle
                deals, _ = known_before(opps, month.deal_touch, month.lead_touch, since)
                redrawn = still_open(deals, life, since)
                if redrawn.any():
                    rng = continuation_rng(self.world, index, future)
                    life = continue_lifecycle(month.sim, opps, life, redrawn, since, rng)
                parts.append(_outcomes(opps, life)[deals])
            if next_first > future.forecast_date:
                sim = MonthSimulator(
                    self.world, index, first, stream=(future.seed,), id_offset=FUTURE_MONTH_NUMBERS, phones=phones
                )
                leads, opps, life = sim.draw_deals()
                deals, _ = born_after(leads, opps, since)
                parts.append(_outcomes(opps, life)[deals])
        return pd.concat(parts, ignore_index=True)


def _outcomes(opps: pd.DataFrame, life: Lifecycle) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "opportunity_id": opps.opportunity_id.to_numpy(),
            "created_at": life.created,
            "closed_at": life.closed,
            "is_won": life.won,
            "amount": life.final_amount,
            "currency": opps.currency.to_numpy(),
        }
    )
