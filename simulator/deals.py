"""Leads, opportunities and the activities around them, one calendar month at a time.

## The win model (what the ground truth means)
Every deal has a latent *health* fixed at creation::

    h = segment shift + deal-type shift + owner skill (less while ramping) + w * engagement + luck

where `engagement` is a standard-normal latent that also drives how many calls connect, how many meetings are held
and how many contacts get involved, and `luck` is what nothing observable can see. From stage k a deal moves
forward with probability `sigmoid(advance_logit_k + h)` and is otherwise lost there. So the chance of winning, given
everything the simulator knows when the deal enters stage k, is exactly ``prod_{j>=k} sigmoid(advance_logit_j + h)``:
that is the "true" probability in `truth/`, calibrated by construction. Unhealthy deals also stall (longer stages,
more close-date pushes), and lost deals linger in their last stage, so deal age and time in stage carry signal too.

Each month is generated from its own random stream, keyed by (seed, month). A month's leads, deals and activities are
therefore the same however far the world is run, which is what lets `advance` continue a world consistently.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from simulator.config import WorldConfig
from simulator.customers import Customers, pick_by_share
from simulator.ids import salesforce_ids
from simulator.names import company_names, email_local_part, person_names
from simulator.org import Organisation, in_ramp
from simulator.phones import PhoneBook
from simulator.timeutil import DAY, business_times, fiscal_quarter_start

if TYPE_CHECKING:
    from simulator.future import Future

STREAM_MONTH = 7
# id ranges per month keep ids unique and stable whatever the month's size (ids are opaque, order is not meaningful)
IDS_PER_MONTH = 2_000_000
CONVERTED_CONTACT_BASE = 20_000_000
LEAD_SOURCES_INBOUND = ("Web", "Webinar", "Referral", "Partner", "Trade Show")
LEAD_SOURCES_OUTBOUND = ("Outbound Prospecting", "List Import")
MEETING_TOPICS = {1: "Intro call", 2: "Discovery", 3: "Demo and proposal review", 4: "Negotiation"}
EMAIL_SUBJECTS = (
    "Following up", "Next steps", "Pricing details", "Proposal attached", "Checking in", "Case studies",
    "Security questionnaire", "Contract redlines", "Meeting recap", "Intro",
)  # fmt: skip
CALL_NOTES = (
    "Discussed current tooling and pain points.\nNext step: demo with the team.",
    "Left details about pricing tiers.",
    'Champion says budget is "approved in principle".\nWaiting on procurement, follow up next week.',
    "Reviewed proposal, concerns about implementation timeline.",
    "Quick check-in; they are evaluating a competitor, too.",
)
LOCATIONS = ("Zoom", "Google Meet", "Microsoft Teams", "On-site", "Phone")
DISPOSITIONS = ("answered", "voicemail", "no_answer", "busy", "failed")
LOST_DWELL_FACTOR = 1.6  # a lost deal lingers in its last stage
MIN_DWELL_DAYS, MAX_DWELL_DAYS = 0.2, 400.0
CHANGE_KIND_ORDER = {"expected_close": 0, "stage": 1, "push": 2, "owner": 3, "close": 4}
CHANGE_COLUMNS = [
    "opportunity_id", "at", "kind", "stage", "stage_number", "amount", "forecast_category", "probability",
    "close_date", "owner_id", "is_closed", "is_won", "writes_history", "history_id",
]  # fmt: skip
CRM_DISPOSITION = {"answered": "Connected", "voicemail": "Left Voicemail", "no_answer": "No Answer", "busy": "Busy",
                   "failed": "Failed"}  # fmt: skip


@dataclass
class World:
    cfg: WorldConfig
    seed: int
    org: Organisation
    customers: Customers
    phones: PhoneBook
    rep_phone_e164: np.ndarray  # by user index
    fx: FxRates
    future: Future | None = None  # another random future from a forecast date on (simulator/future.py)
    future_phones: PhoneBook | None = None  # the future's own numbers, so that the world's do not move


class FxRates:
    """Daily rates, as a random walk per currency: how many reporting-currency units one unit buys."""

    ANCHORS = {"USD": 1.0, "EUR": 1.085, "GBP": 1.265}

    def __init__(self, seed: int, first_day: dt.date, days: int = 365 * 15):
        rng = np.random.default_rng([seed, 3])
        self.first_day = np.datetime64(first_day, "D")
        self.table = {}
        for code, anchor in self.ANCHORS.items():
            if code == "USD":
                self.table[code] = np.ones(days)
                continue
            walk = np.cumsum(rng.normal(0.0, 0.0045, days))
            self.table[code] = np.round(anchor * np.exp(walk - 0.02 * np.sin(np.arange(days) / 300.0)), 6)

    def rates(self, currencies: np.ndarray, at: np.ndarray) -> np.ndarray:
        day = (np.asarray(at, dtype="datetime64[D]") - self.first_day).astype(np.int64)
        out = np.empty(len(day))
        currencies = np.asarray(currencies, dtype=object)
        for code, series in self.table.items():
            mask = currencies == code
            out[mask] = series[day[mask]]
        return out


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def month_starts(cfg: WorldConfig, until: dt.date) -> list[dt.date]:
    first = cfg.start_date.replace(day=1)
    months = []
    while first <= until:
        months.append(first)
        first = (first.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return months


def demand_factor(cfg: WorldConfig, days: np.ndarray) -> np.ndarray:
    """Growth trend times seasonality for each day: the shape bookings inherit."""
    years = (days - np.datetime64(cfg.start_date, "D")).astype(np.int64) / 365.25
    month = days.astype("datetime64[M]").astype(np.int64) % 12
    return (1 + cfg.annual_growth) ** years * np.asarray(cfg.monthly_seasonality)[month]


def _draw_days(cfg: WorldConfig, first: dt.date, rate_per_day: float, rng: np.random.Generator) -> np.ndarray:
    last = (first.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    days = np.arange(np.datetime64(first, "D"), np.datetime64(last, "D"))
    weekday = (days.astype(np.int64) + 3) % 7
    weight = demand_factor(cfg, days) * np.where(weekday >= 5, 0.15, 1.0)
    counts = rng.poisson(rate_per_day * weight)
    return np.repeat(days, counts)


@dataclass
class Lifecycle:
    """A month's deals from creation to close, as drawn: arrays per deal, and per stage visit in deal order (each
    deal's visits in time order). Everything the CRM history and the truth of the deals are written from."""

    created: np.ndarray  # datetime64[s]
    owner: np.ndarray  # user index of the owner at creation
    shift: np.ndarray  # the part of health that is no latent: segment, deal type, owner skill
    engagement: np.ndarray
    health: np.ndarray
    won: np.ndarray
    last_stage: np.ndarray  # 0-based stage the deal leaves the pipeline from (won from the last one)
    regress_at: np.ndarray  # 0-based stage it steps back from once; -1 if it never does
    closed: np.ndarray  # datetime64[s], after the quarter-end push
    natural_close: np.ndarray  # datetime64[s], before it: when the deal was really won or lost
    amount_at_stage: np.ndarray  # (deals, 4), in the deal's currency
    expected_close: np.ndarray  # datetime64[D], as set at creation
    push_deal: np.ndarray  # each later push of the expected close date: deal, when, to which date
    push_at: np.ndarray
    push_to: np.ndarray
    visit_deal: np.ndarray
    visit_stage: np.ndarray  # 0-based
    entered: np.ndarray  # datetime64[s]
    exited: np.ndarray  # datetime64[s]; the last visit's is the close
    category: np.ndarray  # forecast category the rep picks on entering the stage

    @property
    def final_amount(self) -> np.ndarray:
        return self.amount_at_stage[np.arange(len(self.won)), np.minimum(self.last_stage, 3)]

    def p_win_from(self, cfg: WorldConfig) -> np.ndarray:
        """(deals, stages): the true chance to win from entering each stage on, given the deal's health."""
        advance_logit = np.array([s.advance_logit for s in cfg.stages])
        p_advance = sigmoid(advance_logit[None, :] + self.health[:, None])
        return np.cumprod(p_advance[:, ::-1], axis=1)[:, ::-1]


def stage_path(position: np.ndarray, regress_at: np.ndarray) -> np.ndarray:
    """0-based stage of the visit at each position of a deal's path, stepping back once after `regress_at` (>= 0)."""
    r = regress_at
    return np.where((r >= 0) & (position > r), np.where(position == r + 1, r - 1, position - 2), position)


def chain_visits(start: np.ndarray, visits: np.ndarray, dwell: np.ndarray) -> np.ndarray:
    """Entry instants of consecutive visits: each deal's first at its `start`, each next one a dwell later."""
    deal_of_visit = np.repeat(np.arange(len(visits)), visits)
    ends = np.cumsum(dwell.astype(np.int64))
    starts_of_deal = np.repeat(np.cumsum(visits) - visits, visits)
    offset_before = ends - dwell.astype(np.int64) - np.where(starts_of_deal > 0, ends[starts_of_deal - 1], 0)
    return start[deal_of_visit] + offset_before.astype("timedelta64[s]")


def forecast_categories(stage_of_visit: np.ndarray, optimism_visit: np.ndarray, rng: np.random.Generator):
    return np.select(
        [stage_of_visit == 0, stage_of_visit == 1, stage_of_visit == 2],
        [np.where(rng.random(len(stage_of_visit)) < 0.1, "Omitted", "Pipeline"), "Pipeline",
         np.where(optimism_visit > 0.3, "Best Case", "Pipeline")],
        np.where(optimism_visit > -0.5, "Commit", "Best Case"),
    )  # fmt: skip


def close_date_pushes(
    expected_close: np.ndarray, closed: np.ndarray, rng: np.random.Generator, first_gap_days: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(deal, when, new date) of each push: a rep pushes the expected close date 0.3 to 3 days after it passes
    with the deal still open, by two to six weeks. `first_gap_days` bounds the first wait from below."""
    n = len(expected_close)
    push_rows, push_at, push_to = [], [], []
    current = expected_close.copy()
    active = np.ones(n, dtype=bool)
    for attempt in range(60):
        low = 0.3 if first_gap_days is None or attempt else first_gap_days
        when = current.astype("datetime64[s]") + (rng.uniform(low, 3.0, n) * 86400).astype("timedelta64[s]")
        active &= when < closed
        if not active.any():
            break
        new_date = (when + (rng.uniform(14, 45, n) * 86400).astype("timedelta64[s]")).astype("datetime64[D]")
        push_rows.append(np.flatnonzero(active))
        push_at.append(when[active])
        push_to.append(new_date[active])
        current = np.where(active, new_date, current)
    push_rows = np.concatenate(push_rows) if push_rows else np.array([], dtype=int)
    push_at = np.concatenate(push_at) if push_at else np.array([], dtype="datetime64[s]")
    push_to = np.concatenate(push_to) if push_to else np.array([], dtype="datetime64[D]")
    return push_rows, push_at, push_to


class MonthSimulator:
    """Generates one month of the world. Call `run()`; read the frames it fills.

    `stream` extends the key of the month's random stream, `id_offset` moves its record numbers and `phones` is
    the book its new phone numbers come from: a future (see simulator/future.py) draws its own version of a month
    that way, beside the world's.
    """

    def __init__(
        self,
        world: World,
        month_index: int,
        first: dt.date,
        stream: tuple[int, ...] = (),
        id_offset: int = 0,
        phones: PhoneBook | None = None,
    ):
        self.world = world
        self.phones = world.phones if phones is None else phones
        self.cfg = world.cfg
        self.rng = np.random.default_rng([world.seed, STREAM_MONTH, month_index, *stream])
        self.month_index = month_index
        self.first = first
        self.id_base = id_offset + month_index * IDS_PER_MONTH
        users = world.org.users
        self.user_id = users.user_id.to_numpy()
        self.user_email = users.email.to_numpy()
        self.user_tz = users.timezone.to_numpy()
        self.user_skill = users.skill.to_numpy()
        self.user_optimism = users.optimism.to_numpy()
        self.user_hire = users.hire_date.to_numpy().astype("datetime64[D]")
        self.frames: dict[str, pd.DataFrame] = {}
        self._calls: list[pd.DataFrame] = []
        self._tasks: list[pd.DataFrame] = []
        self._next_number = self.id_base
        # filled by `run`, for a future to continue from
        self.opportunities: pd.DataFrame | None = None
        self.lifecycle: Lifecycle | None = None
        self.changes: pd.DataFrame | None = None

    def _ids(self, sobject: str, n: int) -> np.ndarray:
        numbers = self._next_number + np.arange(n) + 1
        self._next_number += n
        return salesforce_ids(sobject, numbers)

    def run(self) -> dict[str, pd.DataFrame]:
        _, opportunities, lifecycle = self.draw_deals()
        self.changes = self.opportunity_changes(opportunities, lifecycle)
        self.changes["history_id"] = None
        history = self.changes.writes_history.to_numpy()
        self.changes.loc[history, "history_id"] = self._ids("OpportunityHistory", int(history.sum()))
        self.frames["opportunity_changes"] = self.changes[CHANGE_COLUMNS]
        self.frames["opportunities"] = opportunities.drop(columns=["seat"])
        self.frames.update(self.truth_frames(opportunities, lifecycle))
        self.deal_activities(opportunities, lifecycle)
        self.collect_activities()
        return self.frames

    def draw_deals(self) -> tuple[pd.DataFrame, pd.DataFrame, Lifecycle]:
        """The month's leads and deals, each deal's life drawn to its close (activities are drawn after)."""
        leads = self._leads()
        self.opportunities = self._opportunities(leads)
        self.lifecycle = self._draw_lifecycle(self.opportunities)
        return leads, self.opportunities, self.lifecycle

    def deal_activities(
        self, opps: pd.DataFrame, life: Lifecycle, visits: np.ndarray | None = None, since: np.datetime64 | None = None
    ) -> None:
        """Calls, emails and meetings during the given stage visits (all by default), from `since` on if given."""
        visits = np.arange(len(life.visit_deal)) if visits is None else visits
        entered = life.entered[visits]
        opens_stage = np.ones(len(visits), dtype=bool)
        if since is not None:
            opens_stage = entered >= since  # a visit under way at `since` had its discovery meeting before
            entered = np.maximum(entered, since)
            opps = opps.assign(created_at=np.maximum(opps.created_at.to_numpy().astype("datetime64[s]"), since))
        self._deal_activities(
            opps, life.visit_deal[visits], life.visit_stage[visits], entered, life.exited[visits], life.engagement,
            opps.seat.to_numpy(), opens_stage,
        )  # fmt: skip

    def collect_activities(self) -> None:
        """Gather the calls and tasks drawn so far into frames; tasks are numbered last, as in every month."""
        self.frames["calls"] = pd.concat(self._calls, ignore_index=True)
        tasks = pd.concat(self._tasks, ignore_index=True)
        tasks.insert(0, "task_id", self._ids("Task", len(tasks)))
        self.frames["tasks"] = tasks

    @contextlib.contextmanager
    def drawing_from(self, rng: np.random.Generator, first_number: int) -> Iterator[dict[str, pd.DataFrame]]:
        """Draw from another stream into fresh frames, numbering records from `first_number` and taking phone
        numbers from the future's book; the month's own stream, numbering, book and frames are as they were
        afterwards. Yields the fresh frames."""
        saved = self.rng, self._next_number, self.frames, self._calls, self._tasks, self.phones
        self.rng, self._next_number, self.frames, self._calls, self._tasks = rng, first_number, {}, [], []
        if self.world.future_phones is not None:
            self.phones = self.world.future_phones
        try:
            yield self.frames
        finally:
            self.rng, self._next_number, self.frames, self._calls, self._tasks, self.phones = saved

    # ---------------------------------------------------------------- leads
    def _leads(self) -> pd.DataFrame:
        cfg, rng, world = self.cfg, self.rng, self.world
        accounts = world.customers.accounts
        days = _draw_days(cfg, self.first, cfg.leads_per_day, rng)
        n = len(days)
        created = days.astype("datetime64[s]") + rng.integers(0, 86400, n).astype("timedelta64[s]")
        # a lead is about one of our accounts' territories; converted leads become one of those accounts
        target_account = rng.integers(0, len(accounts), n)
        account_created = accounts.created_at.to_numpy()[target_account]
        territory = accounts.territory_index.to_numpy()[target_account]
        countries = accounts.country.to_numpy()[target_account]
        inbound = rng.random(n) < cfg.inbound_lead_share
        sources = np.where(
            inbound,
            np.array(LEAD_SOURCES_INBOUND, dtype=object)[rng.integers(0, len(LEAD_SOURCES_INBOUND), n)],
            np.array(LEAD_SOURCES_OUTBOUND, dtype=object)[rng.integers(0, len(LEAD_SOURCES_OUTBOUND), n)],
        )
        conversion_chance = cfg.lead_conversion_rate * np.where(inbound, 1.6, 0.6)
        deleted = rng.random(n) < 0.02
        converted = (rng.random(n) < conversion_chance) & ~deleted
        converted_at = np.maximum(
            created + (rng.uniform(3, 40, n) * 86400).astype("timedelta64[s]"),
            account_created + DAY,
        )
        stays_open = rng.random(n) < 0.2
        closed_at = created + (rng.uniform(10, 90, n) * 86400).astype("timedelta64[s]")
        end_of_work = np.where(converted, converted_at, np.where(stays_open, created + 30 * DAY, closed_at))
        sdr_seat = accounts.sdr_seat.to_numpy()[target_account]
        owner = world.org.holders(sdr_seat, created)

        first, last = person_names(countries, rng)
        own_company, own_domain = company_names(countries, rng)
        company = np.where(converted, accounts.name.to_numpy()[target_account], own_company)
        domain = np.where(converted, accounts.domain.to_numpy()[target_account], own_domain)
        local = email_local_part(first, last, rng.integers(0, 3, n))
        email = (pd.Series(local) + "@" + pd.Series(domain)).to_numpy()
        phone_e164, phone = self.phones.draw(countries, rng, kind="mobile")

        lead_ids = self._ids("Lead", n)
        contact_numbers = CONVERTED_CONTACT_BASE + self.id_base + np.arange(n)
        leads = pd.DataFrame(
            {
                "lead_id": lead_ids,
                "first_name": first,
                "last_name": last,
                "company": company,
                "email": email,
                "phone": phone,
                "phone_e164": phone_e164,
                "country": countries,
                "industry": accounts.industry.to_numpy()[target_account],
                "lead_source": sources,
                "owner_id": self.user_id[owner],
                "owner_index": owner,
                "sdr_seat": sdr_seat,
                "created_at": created,
                "is_converted": converted,
                "converted_at": np.where(converted, converted_at, np.datetime64("NaT")),
                "converted_account_row": np.where(converted, target_account, -1),
                "converted_contact_id": np.where(converted, salesforce_ids("Contact", contact_numbers), None),
                "closed_at": np.where(converted | stays_open, np.datetime64("NaT"), closed_at),
                "deleted_at": np.where(
                    deleted, created + (rng.uniform(1, 20, n) * 86400).astype("timedelta64[s]"), np.datetime64("NaT")
                ),
                "territory_index": territory,
            }
        )
        # prospecting calls: SDRs dial leads while they are being worked
        calls_per_lead = rng.poisson(cfg.prospecting_calls_per_lead, n) + converted.astype(int)
        row = np.repeat(np.arange(n), calls_per_lead)
        span = (end_of_work - created)[row].astype(np.int64)
        when_day = (created[row] + (rng.random(len(row)) * span).astype("timedelta64[s]")).astype("datetime64[D]")
        caller = world.org.holders(sdr_seat[row], when_day.astype("datetime64[s]"))
        started = business_times(when_day, self.user_tz[caller], rng)
        connect_chance = np.full(len(row), 0.16)
        calls = self._make_calls(
            started=started,
            caller=caller,
            other_e164=phone_e164[row],
            inbound=np.zeros(len(row), dtype=bool),
            connect_chance=connect_chance,
            talk_median=90.0,
            who_id=lead_ids[row],
            what_id=np.full(len(row), None, dtype=object),
            who_name=(pd.Series(first[row]) + " " + pd.Series(last[row])).to_numpy(),
            opportunity_id=np.full(len(row), None, dtype=object),
        )
        first_call = calls.groupby("who_id").started_at.min()
        leads["first_worked_at"] = leads.lead_id.map(first_call).to_numpy().astype("datetime64[s]")
        self.frames["leads"] = leads
        return leads

    # ---------------------------------------------------------------- opportunities
    def _opportunities(self, leads: pd.DataFrame) -> pd.DataFrame:
        cfg, rng, world = self.cfg, self.rng, self.world
        accounts = world.customers.accounts
        days = _draw_days(cfg, self.first, cfg.opportunities_per_day, rng)
        n_direct = len(days)
        created_direct = business_times(days, np.full(n_direct, "UTC", dtype=object), rng, hours=(6.0, 22.0))
        # direct deals go to accounts that exist by then, in proportion to the segment mix of the pool
        account_created = accounts.created_at.to_numpy()
        account_row = rng.integers(0, len(accounts), n_direct)
        late = account_created[account_row] > created_direct
        account_row[late] = rng.integers(0, len(accounts), late.sum())
        created_direct = np.maximum(created_direct, account_created[account_row] + DAY)
        type_names = np.array([t for t, _ in cfg.opportunity_type_mix], dtype=object)
        deal_type = type_names[pick_by_share(np.array([s for _, s in cfg.opportunity_type_mix]), rng.random(n_direct))]
        direct = pd.DataFrame(
            {
                "account_row": account_row,
                "created_at": created_direct,
                "opportunity_type": deal_type,
                "lead_source": np.where(deal_type == "New Business", "AE Sourced", "Existing Customer"),
                "sourced_by_id": None,
                "converted_contact_id": None,
                "lead_id": None,
            }
        )
        conv = leads[leads.is_converted]
        from_leads = pd.DataFrame(
            {
                "account_row": conv.converted_account_row.to_numpy(),
                "created_at": conv.converted_at.to_numpy(),
                "opportunity_type": "New Business",
                "lead_source": conv.lead_source.to_numpy(),
                "sourced_by_id": self.user_id[
                    world.org.holders(conv.sdr_seat.to_numpy(), conv.converted_at.to_numpy())
                ],
                "converted_contact_id": conv.converted_contact_id.to_numpy(),
                "lead_id": conv.lead_id.to_numpy(),
            }
        )
        opps = pd.concat([direct, from_leads], ignore_index=True)
        opps = opps.sort_values(["created_at", "account_row"], kind="stable").reset_index(drop=True)
        n = len(opps)
        opps["opportunity_id"] = self._ids("Opportunity", n)
        acct = opps.account_row.to_numpy()
        is_new = opps.opportunity_type.to_numpy() == "New Business"
        opps["seat"] = np.where(is_new, accounts.ae_seat.to_numpy()[acct], accounts.am_seat.to_numpy()[acct])
        opps["segment_index"] = accounts.segment_index.to_numpy()[acct]
        opps["currency"] = accounts.currency.to_numpy()[acct]
        products = np.array([p for p, _ in cfg.products], dtype=object)
        opps["product"] = products[pick_by_share(np.array([s for _, s in cfg.products]), rng.random(n))]
        opps["name"] = (
            accounts.name.to_numpy()[acct]
            + " - "
            + opps["product"]
            + " "
            + np.where(is_new, "New", opps.opportunity_type.str.slice(0, 9))
        )
        lead_rows = leads.set_index("lead_id")
        converted = opps.lead_id.notna().to_numpy()
        contact_map = {
            "converted_contact_first": "first_name", "converted_contact_last": "last_name",
            "converted_contact_email": "email", "converted_contact_phone": "phone",
            "converted_contact_phone_e164": "phone_e164", "converted_contact_country": "country",
        }  # fmt: skip
        for target, source in contact_map.items():
            values = np.full(n, None, dtype=object)
            values[converted] = lead_rows.loc[opps.lead_id[converted], source].to_numpy()
            opps[target] = values
        # contacts created by converting leads join the account's contacts
        new_contacts = opps.loc[converted, ["converted_contact_id", "account_row", "created_at"] + list(contact_map)]
        self.frames["converted_contacts"] = new_contacts.reset_index(drop=True)
        return opps

    def _draw_lifecycle(self, opps: pd.DataFrame) -> Lifecycle:
        cfg, rng, world = self.cfg, self.rng, self.world
        n = len(opps)
        stages = cfg.stages
        n_stages = len(stages)
        created = opps.created_at.to_numpy().astype("datetime64[s]")
        seat = opps.seat.to_numpy()
        owner0 = world.org.holders(seat, created)
        ramp = in_ramp(self.user_hire[owner0], created, cfg.ramp_days)
        skill = self.user_skill[owner0] - cfg.ramp_skill_penalty * ramp
        optimism = self.user_optimism[owner0]
        segment = opps.segment_index.to_numpy()
        seg_shift = np.array([s.win_logit_shift for s in cfg.segments])[segment]
        type_shift = np.select(
            [opps.opportunity_type == "Expansion", opps.opportunity_type == "Renewal"], [0.4, 1.2], 0.0
        )
        engagement = rng.normal(0.0, 1.0, n)
        luck = rng.normal(0.0, cfg.luck_sd, n)
        health = seg_shift + type_shift + skill + cfg.engagement_weight * engagement + luck
        advance_logit = np.array([s.advance_logit for s in stages])
        p_advance = sigmoid(advance_logit[None, :] + health[:, None])  # (n, stages)

        advanced = rng.random((n, n_stages)) < p_advance
        # last stage reached: first stage not advanced (0-based); n_stages means won
        not_advanced = ~advanced
        last_stage = np.where(not_advanced.any(axis=1), not_advanced.argmax(axis=1), n_stages - 1)
        won = advanced.all(axis=1)
        reached = last_stage + 1  # number of stages visited in order

        # stage visits, with an occasional step back (a regression) in the later stages
        regress = (reached >= 3) & (rng.random(n) < cfg.regression_share)
        regress_at = np.where(regress, rng.integers(2, np.maximum(reached, 3)), -1)  # 0-based stage that steps back
        visits = reached + 2 * regress
        deal_of_visit = np.repeat(np.arange(n), visits)
        position = np.arange(visits.sum()) - np.repeat(np.cumsum(visits) - visits, visits)
        stage_of_visit = stage_path(position, regress_at[deal_of_visit])
        is_last_visit = position == visits[deal_of_visit] - 1
        cycle_scale = np.array([s.cycle_scale for s in cfg.segments])[segment]
        median_days = np.array([s.median_days for s in stages])[stage_of_visit] * cycle_scale[deal_of_visit]
        dwell_days = median_days * np.exp(-0.3 * health[deal_of_visit] + rng.normal(0.0, 0.55, len(position)))
        dwell_days = np.where(is_last_visit & ~won[deal_of_visit], dwell_days * LOST_DWELL_FACTOR, dwell_days)
        dwell_days = np.clip(dwell_days, MIN_DWELL_DAYS, MAX_DWELL_DAYS)
        dwell = (dwell_days * 86400).astype("timedelta64[s]")
        entered = chain_visits(created, visits, dwell)
        natural_close = entered[is_last_visit] + dwell[is_last_visit]

        # quarter-end push: reps pull wins from the first weeks of a quarter into the last days of the previous one,
        # and hold some mid-quarter wins for the quarter's final week
        closed = self._quarter_end_push(natural_close, won, entered[is_last_visit])
        exited = np.concatenate([entered[1:], [np.datetime64("NaT")]]).astype("datetime64[s]")
        exited[is_last_visit] = closed

        # amounts: heavy-tailed by segment, in the deal's currency, revised at proposal and discounted at closing
        median_amount = np.array([s.median_amount_usd for s in cfg.segments])[segment]
        sigma = np.array([s.amount_sigma for s in cfg.segments])[segment]
        amount_usd = (
            median_amount * np.exp(rng.normal(0.0, sigma, n)) * np.where(opps.opportunity_type == "Renewal", 0.8, 1.0)
        )
        rate = self.world_fx(opps.currency.to_numpy(), created)
        step = np.where(segment == 0, 10.0, 100.0)
        amount0 = np.maximum(np.round(amount_usd / rate / step) * step, step)
        revise = rng.random(n) < 0.5
        revision = np.where(revise, np.exp(rng.normal(0.05, 0.25, n)), 1.0)
        discount = np.where(rng.random(n) < 0.35, rng.uniform(0.85, 1.0, n), 1.0)
        amount_at_stage = np.stack(
            [amount0, amount0, np.round(amount0 * revision / step) * step,
             np.round(amount0 * revision * discount / step) * step], axis=1
        )  # fmt: skip

        # forecast category chosen by the rep: optimists call Commit earlier
        optimism_visit = optimism[deal_of_visit] + rng.normal(0.0, 1.0, len(position))
        category = forecast_categories(stage_of_visit, optimism_visit, rng)

        # expected close dates: set optimistic or not at creation, pushed each time they pass with the deal open
        # reps plan for the happy path, so most deals that go the distance slip at least once
        expected_cycle = (
            0.55 * cycle_scale * sum(s.median_days for s in stages) * np.exp(-0.3 * optimism + rng.normal(0.0, 0.3, n))
        )
        expected_close = (created + (expected_cycle * 86400).astype("timedelta64[s]")).astype("datetime64[D]")
        snap = rng.random(n) < 0.4
        month_end = (expected_close.astype("datetime64[M]") + 1).astype("datetime64[D]") - 1
        expected_close = np.where(snap, month_end, expected_close)
        push_rows, push_at, push_to = close_date_pushes(expected_close, closed, rng)
        opps["owner_id"] = self.user_id[owner0]
        return Lifecycle(
            created=created, owner=owner0, shift=seg_shift + type_shift + skill, engagement=engagement,
            health=health, won=won, last_stage=last_stage, regress_at=regress_at, closed=closed,
            natural_close=natural_close, amount_at_stage=amount_at_stage, expected_close=expected_close,
            push_deal=push_rows, push_at=push_at, push_to=push_to, visit_deal=deal_of_visit,
            visit_stage=stage_of_visit, entered=entered, exited=exited, category=category,
        )  # fmt: skip

    def opportunity_changes(self, opps: pd.DataFrame, life: Lifecycle) -> pd.DataFrame:
        """Every change of a tracked field of each deal, with its full state carried forward (no record ids yet)."""
        cfg, world = self.cfg, self.world
        n = len(opps)
        n_stages = len(cfg.stages)
        deal_of_visit, stage_of_visit = life.visit_deal, life.visit_stage
        won, closed = life.won, life.closed
        visit_amount = life.amount_at_stage[deal_of_visit, np.minimum(stage_of_visit, 3)]
        stage_names = np.array([s.name for s in cfg.stages], dtype=object)
        stage_probability = np.array([s.probability for s in cfg.stages])
        events = []
        events.append(pd.DataFrame({
            "deal": deal_of_visit, "at": life.entered, "kind": "stage", "stage": stage_names[stage_of_visit],
            "stage_number": stage_of_visit + 1, "amount": visit_amount, "forecast_category": life.category,
            "probability": stage_probability[stage_of_visit], "close_date": pd.NaT, "owner": -1,
        }))  # fmt: skip
        events.append(pd.DataFrame({
            "deal": np.arange(n), "at": life.created, "kind": "expected_close", "stage": None, "stage_number": -1,
            "amount": np.nan, "forecast_category": None, "probability": -1, "close_date": life.expected_close,
            "owner": life.owner,
        }))  # fmt: skip
        events.append(pd.DataFrame({
            "deal": life.push_deal, "at": life.push_at, "kind": "push", "stage": None, "stage_number": -1,
            "amount": np.nan, "forecast_category": None, "probability": -1, "close_date": life.push_to, "owner": -1,
        }))  # fmt: skip
        final_stage = np.where(won, cfg.won_stage.name, cfg.lost_stage.name)
        events.append(pd.DataFrame({
            "deal": np.arange(n), "at": closed, "kind": "close", "stage": final_stage,
            "stage_number": np.where(won, n_stages + 1, n_stages + 2), "amount": np.nan,
            "forecast_category": np.where(won, cfg.won_stage.forecast_category, cfg.lost_stage.forecast_category),
            "probability": np.where(won, cfg.won_stage.probability, cfg.lost_stage.probability),
            "close_date": closed.astype("datetime64[D]"), "owner": -1,
        }))  # fmt: skip
        change_rows, change_tenure = world.org.holder_changes(opps.seat.to_numpy(), life.created, closed)
        events.append(pd.DataFrame({
            "deal": change_rows, "at": world.org.tenure_from[change_tenure], "kind": "owner", "stage": None,
            "stage_number": -1, "amount": np.nan, "forecast_category": None, "probability": -1, "close_date": pd.NaT,
            "owner": world.org.tenure_user[change_tenure],
        }))  # fmt: skip
        ev = pd.concat(events, ignore_index=True)
        ev["kind_order"] = ev.kind.map(CHANGE_KIND_ORDER)
        ev = ev.sort_values(["deal", "at", "kind_order"], kind="stable").reset_index(drop=True)
        ev[["stage", "stage_number", "amount", "forecast_category", "probability", "close_date", "owner"]] = (
            ev[["stage", "stage_number", "amount", "forecast_category", "probability", "close_date", "owner"]]
            .replace({"stage_number": {-1: np.nan}, "probability": {-1: np.nan}, "owner": {-1: np.nan}})
            .groupby(ev.deal)
            .ffill()
        )
        # the creation row and its expected-close row are one change
        ev = ev[~(ev.kind == "expected_close")].reset_index(drop=True)
        ev["owner"] = ev.owner.astype(np.int64)
        ev["opportunity_id"] = opps.opportunity_id.to_numpy()[ev.deal]
        ev["owner_id"] = self.user_id[ev.owner.to_numpy()]
        ev["is_closed"] = ev.kind == "close"
        ev["is_won"] = ev.is_closed & won[ev.deal.to_numpy()]
        ev["writes_history"] = ev.kind != "owner"
        ev["amount"] = ev.amount.to_numpy()
        ev["stage_number"] = ev.stage_number.astype(int)
        return ev

    def truth_frames(self, opps: pd.DataFrame, life: Lifecycle) -> dict[str, pd.DataFrame]:
        cfg = self.cfg
        n_stages = len(cfg.stages)
        segment = opps.segment_index.to_numpy()
        opportunity_id = opps.opportunity_id.to_numpy()
        p_win_from = life.p_win_from(cfg)
        stage_names = np.array([s.name for s in cfg.stages], dtype=object)
        return {
            "truth_outcomes": pd.DataFrame({
                "opportunity_id": opportunity_id, "created_at": life.created, "closed_at": life.closed,
                "is_won": life.won, "final_stage_number": np.where(life.won, n_stages + 1, life.last_stage + 1),
                "amount": life.final_amount, "currency": opps.currency.to_numpy(),
                "segment": np.array([s.name for s in cfg.segments])[segment],
                "true_p_win_at_creation": p_win_from[:, 0], "health": life.health, "engagement": life.engagement,
            }),
            "truth_stage_entries": pd.DataFrame({
                "opportunity_id": opportunity_id[life.visit_deal], "stage": stage_names[life.visit_stage],
                "stage_number": life.visit_stage + 1, "entered_at": life.entered, "exited_at": life.exited,
                "true_p_win": p_win_from[life.visit_deal, life.visit_stage],
            }),
        }  # fmt: skip

    def world_fx(self, currencies: np.ndarray, at: np.ndarray) -> np.ndarray:
        return self.world.fx.rates(currencies, at)

    def _quarter_end_push(
        self,
        closed: np.ndarray,
        won: np.ndarray,
        closing_entered: np.ndarray,
        rng: np.random.Generator | None = None,
    ) -> np.ndarray:
        cfg, rng = self.cfg, self.rng if rng is None else rng
        n = len(closed)
        day = closed.astype("datetime64[D]")
        quarter = fiscal_quarter_start(day, cfg.fiscal_year_start_month)
        next_quarter = fiscal_quarter_start(
            (quarter.astype("datetime64[M]") + 3).astype("datetime64[D]"), cfg.fiscal_year_start_month
        )
        into_quarter = (day - quarter).astype(np.int64)
        to_end = (next_quarter - day).astype(np.int64)
        time_of_day = closed - day.astype("datetime64[s]")
        pull = won & (into_quarter < 20) & (rng.random(n) < cfg.quarter_end_push_share)
        pulled = (quarter - rng.integers(1, 6, n).astype("timedelta64[D]")).astype("datetime64[s]") + time_of_day
        hold = won & ~pull & (to_end > 12) & (rng.random(n) < cfg.quarter_end_push_share / 3)
        held = (next_quarter - rng.integers(1, 6, n).astype("timedelta64[D]")).astype("datetime64[s]") + time_of_day
        out = closed.copy()
        ok_pull = pull & (pulled > closing_entered + DAY)
        out[ok_pull] = pulled[ok_pull]
        out[hold] = held[hold]
        return out

    # ---------------------------------------------------------------- activities
    def _deal_activities(
        self, opps, deal_of_visit, stage_of_visit, entered, exited, engagement, seat, opens_stage
    ) -> None:
        cfg, rng, world = self.cfg, self.rng, self.world
        customers = world.customers
        n = len(opps)
        intensity = cfg.activity_intensity
        acct = opps.account_row.to_numpy()
        n_contacts = np.diff(customers.contact_offset)[acct]
        involved = np.minimum(n_contacts, 1 + rng.poisson(np.exp(0.45 * engagement + 0.3 * opps.segment_index)))
        pool_start = rng.integers(0, 1 << 30, n)
        has_converted = opps.converted_contact_id.notna().to_numpy()
        dwell_days = (exited - entered).astype(np.int64) / 86400.0
        u = engagement[deal_of_visit]

        def contact_rows(deals: np.ndarray) -> np.ndarray:
            pick = rng.integers(0, 1 << 30, len(deals)) % involved[deals]
            return customers.contact_offset[acct[deals]] + (pool_start[deals] + pick) % n_contacts[deals]

        def visit_days(visit: np.ndarray) -> np.ndarray:
            span = (exited[visit] - entered[visit]).astype(np.int64)
            return (entered[visit] + (rng.random(len(visit)) * span).astype("timedelta64[s]")).astype("datetime64[D]")

        contacts = customers.contacts
        contact_id = contacts.contact_id.to_numpy()
        contact_name = (contacts.first_name + " " + contacts.last_name).to_numpy()
        contact_email = contacts.email.to_numpy()
        contact_phone = np.where(
            (contacts.mobile_e164.to_numpy() != "") & (contacts.contact_number.to_numpy() % 2 == 0),
            contacts.mobile_e164.to_numpy(), contacts.phone_e164.to_numpy()
        )  # fmt: skip

        def counterparts(visit: np.ndarray):
            deals = deal_of_visit[visit]
            rows = contact_rows(deals)
            ids, names, emails, phones = contact_id[rows], contact_name[rows], contact_email[rows], contact_phone[rows]
            # the lead's own contact is the first person the AE talks to on a converted deal
            primary = has_converted[deals] & (rng.random(len(deals)) < 0.5)
            ids = np.where(primary, opps.converted_contact_id.to_numpy()[deals], ids)
            first_last = opps.converted_contact_first.astype(str) + " " + opps.converted_contact_last.astype(str)
            names = np.where(primary, first_last.to_numpy()[deals], names)
            emails = np.where(primary, opps.converted_contact_email.to_numpy()[deals], emails)
            phones = np.where(primary, opps.converted_contact_phone_e164.to_numpy()[deals], phones)
            return ids, names, emails, phones

        opportunity_id = opps.opportunity_id.to_numpy()
        # calls
        n_calls = rng.poisson(cfg.call_rate * intensity * dwell_days * np.exp(0.5 * u))
        visit = np.repeat(np.arange(len(deal_of_visit)), n_calls)
        days = visit_days(visit)
        caller = world.org.holders(seat[deal_of_visit[visit]], days.astype("datetime64[s]"))
        who, names, _, phones = counterparts(visit)
        self._make_calls(
            started=business_times(days, self.user_tz[caller], rng),
            caller=caller,
            other_e164=phones,
            inbound=rng.random(len(visit)) < cfg.inbound_call_share,
            connect_chance=sigmoid(-0.4 + 0.6 * u[visit]),
            talk_median=300.0,
            who_id=who,
            what_id=opportunity_id[deal_of_visit[visit]],
            who_name=names,
            opportunity_id=opportunity_id[deal_of_visit[visit]],
        )
        # calls from and to numbers in no CRM record: spam, switchboards, personal calls
        n_unknown = rng.binomial(len(visit), cfg.unknown_number_call_share)
        if n_unknown:
            pick = rng.integers(0, len(visit), n_unknown)
            countries = world.org.users.country.to_numpy()[caller[pick]]
            unknown_e164, _ = self.phones.draw(countries, rng, kind="mobile")
            self._make_calls(
                started=business_times(days[pick], self.user_tz[caller[pick]], rng),
                caller=caller[pick],
                other_e164=unknown_e164,
                inbound=rng.random(n_unknown) < 0.6,
                connect_chance=np.full(n_unknown, 0.5),
                talk_median=60.0,
                who_id=np.full(n_unknown, None, dtype=object),
                what_id=np.full(n_unknown, None, dtype=object),
                who_name=np.full(n_unknown, None, dtype=object),
                opportunity_id=np.full(n_unknown, None, dtype=object),
                loggable=False,
            )
        # emails, logged as CRM tasks
        n_emails = rng.poisson(cfg.email_rate * intensity * dwell_days * np.exp(0.3 * u))
        visit = np.repeat(np.arange(len(deal_of_visit)), n_emails)
        days = visit_days(visit)
        sender = world.org.holders(seat[deal_of_visit[visit]], days.astype("datetime64[s]"))
        sent = business_times(days, self.user_tz[sender], rng, hours=(7.0, 20.0))
        who, _, _, _ = counterparts(visit)
        reply = rng.random(len(visit)) < 0.3
        subject = np.array(EMAIL_SUBJECTS, dtype=object)[rng.integers(0, len(EMAIL_SUBJECTS), len(visit))]
        self._tasks.append(pd.DataFrame({
            "task_subtype": "Email", "who_id": who, "what_id": opportunity_id[deal_of_visit[visit]],
            "owner_id": self.user_id[sender], "subject": np.where(reply, "Email: RE: " + subject, "Email: " + subject),
            "activity_at": sent, "created_at": sent + np.timedelta64(2, "s"), "call_duration": np.nan,
            "call_type": None, "call_disposition": None, "call_object": None, "description": None,
            "deleted_at": pd.NaT,
        }))  # fmt: skip
        self._meetings(
            opps, deal_of_visit, stage_of_visit, entered, exited, engagement, seat, counterparts, visit_days,
            dwell_days, opens_stage,
        )  # fmt: skip

    def _meetings(
        self,
        opps,
        deal_of_visit,
        stage_of_visit,
        entered,
        exited,
        engagement,
        seat,
        counterparts,
        visit_days,
        dwell_days,
        opens_stage,
    ) -> None:
        cfg, rng, world = self.cfg, self.rng, self.world
        u = engagement[deal_of_visit]
        n_meetings = rng.poisson(cfg.meeting_rate * cfg.activity_intensity * dwell_days * np.exp(0.6 * u))
        n_meetings += ((stage_of_visit == 1) & opens_stage).astype(int)  # a discovery meeting when qualifying
        visit = np.repeat(np.arange(len(deal_of_visit)), n_meetings)
        m = len(visit)
        deals = deal_of_visit[visit]
        days = visit_days(visit)
        organizer = world.org.holders(seat[deals], days.astype("datetime64[s]"))
        local_start = business_times(days, self.user_tz[organizer], rng, hours=(8.0, 17.0))
        start = local_start - (local_start.astype(np.int64) % 900).astype("timedelta64[s]")  # quarter-hour slots
        created_floor = opps.created_at.to_numpy().astype("datetime64[s]")[deals]
        cancelled = rng.random(m) < cfg.meeting_cancel_share * np.where(u[visit] < 0, 1.5, 0.7)
        rescheduled = ~cancelled & (rng.random(m) < cfg.meeting_reschedule_share)
        original = np.where(rescheduled, start - rng.integers(1, 8, m).astype("timedelta64[D]"), start)
        booked = np.maximum(original - (rng.uniform(1, 10, m) * 86400).astype("timedelta64[s]"), created_floor)
        booked = np.minimum(booked, original - np.timedelta64(3600, "s"))
        rescheduled_at = np.where(
            rescheduled, booked + ((original - booked).astype(np.int64) * rng.uniform(0.3, 0.9, m)).astype(
                "timedelta64[s]"), np.datetime64("NaT"))  # fmt: skip
        cancelled_at = np.where(
            cancelled, booked + ((start - booked).astype(np.int64) * rng.uniform(0.4, 0.95, m)).astype(
                "timedelta64[s]"), np.datetime64("NaT"))  # fmt: skip
        duration = np.array([30, 45, 60])[pick_by_share(np.array([0.5, 0.2, 0.3]), rng.random(m))]
        uid = np.char.add(
            np.char.mod("%016x", rng.integers(0, 1 << 62, m, dtype=np.int64)), "@meet.northwind-sales.example"
        ).astype(object)
        accounts = world.customers.accounts
        company = accounts.name.to_numpy()[opps.account_row.to_numpy()[deals]]
        topic = np.array([MEETING_TOPICS[s + 1] for s in range(4)], dtype=object)[np.minimum(stage_of_visit[visit], 3)]
        meetings = pd.DataFrame({
            "uid": uid, "organizer_user_id": self.user_id[organizer], "created_at": booked, "start_at": start,
            "original_start_at": original, "rescheduled_at": rescheduled_at, "cancelled_at": cancelled_at,
            "duration_minutes": duration, "summary": company + " / Northwind: " + topic,
            "location": np.array(LOCATIONS, dtype=object)[rng.integers(0, len(LOCATIONS), m)],
            "use_utc": rng.random(m) < 0.15, "opportunity_id": opps.opportunity_id.to_numpy()[deals],
        })  # fmt: skip
        # attendees: one to three of the deal's contacts
        n_att = np.minimum(1 + rng.poisson(0.4 + 0.4 * np.maximum(u[visit], 0)), 3)
        att_meeting = np.repeat(np.arange(m), n_att)
        who, names, emails, _ = counterparts(visit[att_meeting])
        att = pd.DataFrame({
            "uid": uid[att_meeting], "contact_id": who, "email": emails, "name": names,
            "partstat": np.array(["ACCEPTED", "TENTATIVE", "NEEDS-ACTION", "DECLINED"], dtype=object)[
                pick_by_share(np.array([0.8, 0.1, 0.08, 0.02]), rng.random(len(att_meeting)))],
            "role": np.where(rng.random(len(att_meeting)) < 0.9, "REQ-PARTICIPANT", "OPT-PARTICIPANT"),
        }).drop_duplicates(["uid", "email"])  # fmt: skip
        self.frames["meetings"] = meetings
        self.frames["meeting_attendees"] = att.reset_index(drop=True)

        # held meetings logged in the CRM as Events: synced ones carry the calendar UID, others typed in by hand
        held = ~cancelled
        logged = held & (rng.random(m) < cfg.meeting_logged_share)
        synced = logged & (rng.random(m) < cfg.meeting_synced_share)
        idx = np.flatnonzero(logged)
        first_attendee = att.drop_duplicates("uid").set_index("uid").contact_id
        end = start + (duration * 60).astype("timedelta64[s]")
        manual_created = end + (rng.uniform(0.05, 24, m) * 3600).astype("timedelta64[s]")
        self.frames["crm_events"] = pd.DataFrame({
            "event_id": self._ids("Event", len(idx)), "who_id": first_attendee.reindex(uid[idx]).to_numpy(),
            "what_id": meetings.opportunity_id.to_numpy()[idx], "owner_id": self.user_id[organizer[idx]],
            "subject": np.where(synced[idx], meetings.summary.to_numpy()[idx], "Meeting: " + topic[idx]),
            "start_at": start[idx], "end_at": end[idx], "duration_minutes": duration[idx],
            "location": meetings.location.to_numpy()[idx],
            "external_event_id": np.where(synced[idx], uid[idx], None),
            "created_at": np.where(synced[idx], booked[idx], manual_created[idx]),
            "calendar_uid": uid[idx],
        })  # fmt: skip

    def _make_calls(
        self,
        *,
        started,
        caller,
        other_e164,
        inbound,
        connect_chance,
        talk_median,
        who_id,
        what_id,
        who_name,
        opportunity_id,
        loggable: bool = True,
    ) -> pd.DataFrame:
        """Call-detail records for the given calls, plus the CRM tasks reps log for some of them."""
        rng, cfg = self.rng, self.cfg
        n = len(started)
        answered = rng.random(n) < connect_chance
        miss = np.array(DISPOSITIONS[1:], dtype=object)[pick_by_share(np.array([0.45, 0.4, 0.08, 0.07]), rng.random(n))]
        disposition = np.where(answered, "answered", miss)
        ring = np.select(
            [disposition == "answered", disposition == "voicemail", disposition == "no_answer",
             disposition == "busy"],
            [rng.integers(3, 26, n), rng.integers(18, 31, n), rng.integers(28, 46, n), rng.integers(1, 6, n)],
            rng.integers(0, 3, n),
        )  # fmt: skip
        talk = np.where(answered, np.maximum(5, rng.lognormal(np.log(talk_median), 0.8, n)).astype(np.int64), 0)
        message = np.where(disposition == "voicemail", rng.integers(12, 61, n), 0)
        started = np.asarray(started, dtype="datetime64[s]")
        answered_at = np.where(answered, started + ring.astype("timedelta64[s]"), np.datetime64("NaT"))
        ended = started + (ring + talk + message).astype("timedelta64[s]")
        call_id = np.char.add(
            np.char.add("CA", np.char.mod("%016x", rng.integers(0, 1 << 62, n, dtype=np.int64))),
            np.char.mod("%016x", rng.integers(0, 1 << 62, n, dtype=np.int64)),
        ).astype(object)
        rep_number = self.world.rep_phone_e164[caller]
        calls = pd.DataFrame({
            "call_id": call_id, "direction": np.where(inbound, "inbound", "outbound"),
            "from_e164": np.where(inbound, other_e164, rep_number),
            "to_e164": np.where(inbound, rep_number, other_e164),
            "user_id": self.user_id[caller], "user_email": self.user_email[caller], "started_at": started,
            "answered_at": answered_at, "ended_at": ended, "duration_seconds": (ended - started).astype(np.int64),
            "talk_seconds": talk, "disposition": disposition, "who_id": who_id, "opportunity_id": opportunity_id,
        })  # fmt: skip
        self._calls.append(calls)
        if loggable:
            logged = rng.random(n) < cfg.call_logged_share * np.where(answered, 1.25, 0.8)
            cti = logged & (rng.random(n) < cfg.call_logged_by_cti_share)
            idx = np.flatnonzero(logged)
            delay = np.where(cti, rng.integers(5, 60, n), rng.integers(300, 3 * 3600, n)).astype("timedelta64[s]")
            notes = np.array(CALL_NOTES, dtype=object)[rng.integers(0, len(CALL_NOTES), n)]
            with_notes = answered & (rng.random(n) < 0.35)
            duration = np.where(
                cti, (ended - started).astype(np.int64), np.round((ended - started).astype(np.int64) / 60) * 60
            )
            subject = np.where(cti, "Call", np.where(who_name == None, "Call", "Call with " + who_name.astype(str)))  # noqa: E711
            deleted = rng.random(n) < 0.01
            self._tasks.append(pd.DataFrame({
                "task_subtype": "Call", "who_id": who_id[idx], "what_id": what_id[idx],
                "owner_id": self.user_id[caller[idx]], "subject": subject[idx], "activity_at": started[idx],
                "created_at": (ended + delay)[idx], "call_duration": duration[idx].astype(float),
                "call_type": np.where(inbound, "Inbound", "Outbound")[idx],
                "call_disposition": np.array([CRM_DISPOSITION[d] for d in disposition[idx]], dtype=object),
                "call_object": np.where(cti, call_id, None)[idx], "description": np.where(with_notes, notes, None)[idx],
                "deleted_at": np.where(deleted, ended + (rng.uniform(1, 15, n) * 86400).astype("timedelta64[s]"),
                                       np.datetime64("NaT"))[idx],
                "source_call_id": call_id[idx],
            }))  # fmt: skip
        return calls
