"""Every knob of the simulated sales organisation, in one place.

A world is fully determined by a `WorldConfig` (a preset plus overrides) and a seed. The presets differ only in
scale; the behaviour (win model, seasonality, formats, fault rates) is shared so that `tiny` tests the same code
paths `bench` exercises.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Stage:
    name: str
    order: int
    probability: int  # the CRM's default probability (percent), what "weighted pipeline" uses
    forecast_category: str  # the category a neutral rep would pick in this stage
    advance_logit: float  # intercept of the true chance to leave this stage forward (see deals.py)
    median_days: float  # median dwell for a mid-market deal; scaled by segment


@dataclass(frozen=True)
class Segment:
    name: str
    share_of_accounts: float
    median_amount_usd: float
    amount_sigma: float  # log-normal spread: heavy-tailed deal sizes
    win_logit_shift: float  # SMB deals are easier to win than enterprise ones
    cycle_scale: float  # multiplies stage dwell times
    employee_bands: tuple[str, ...]
    contacts_per_account: tuple[int, int]  # inclusive range


@dataclass(frozen=True)
class Region:
    name: str
    # country ISO code -> (share within region, deal currency, IANA time zones of reps there)
    countries: dict[str, tuple[float, str, tuple[str, ...]]]
    share_of_accounts: float


@dataclass(frozen=True)
class CompPlan:
    role: str
    base_salary_usd: int
    commission_rate: float  # on bookings up to 100% attainment
    accelerator_multiplier: float  # commission rate multiplier above 100% attainment
    accelerator_threshold: float = 1.0


@dataclass(frozen=True)
class FaultRates:
    """Share of rows (or files) that get each defect when `--faults` is on."""

    duplicate_row: float = 0.004
    malformed_date: float = 0.002
    bad_number: float = 0.002
    unknown_stage: float = 0.003
    orphan_foreign_key: float = 0.002
    negative_amount: float = 0.002
    missing_amount: float = 0.002
    invalid_phone: float = 0.003
    timestamp_without_zone: float = 0.002
    future_dated: float = 0.001
    truncated_files: int = 1
    non_utf8_files: int = 1
    broken_vevents: int = 2


STAGES: tuple[Stage, ...] = (
    Stage("Prospecting", 1, 10, "Pipeline", 0.2, 9.0),
    Stage("Qualification", 2, 20, "Pipeline", 0.5, 14.0),
    Stage("Proposal", 3, 50, "Best Case", 0.8, 18.0),
    Stage("Closing", 4, 80, "Commit", 1.3, 12.0),
)
WON_STAGE = Stage("Closed Won", 5, 100, "Closed", 0.0, 0.0)
LOST_STAGE = Stage("Closed Lost", 6, 0, "Omitted", 0.0, 0.0)

SEGMENTS: tuple[Segment, ...] = (
    Segment("SMB", 0.55, 9_000, 0.85, 0.35, 0.6, ("1-10", "11-50", "51-200"), (1, 4)),
    Segment("Mid-Market", 0.33, 42_000, 0.9, 0.0, 1.0, ("201-500", "501-1000"), (2, 7)),
    Segment("Enterprise", 0.12, 170_000, 1.0, -0.4, 1.7, ("1001-5000", "5001-10000", "10000+"), (4, 12)),
)

REGIONS: tuple[Region, ...] = (
    Region(
        "AMER",
        {
            "US": (0.86, "USD", ("America/New_York", "America/Chicago", "America/Los_Angeles")),
            "CA": (0.14, "USD", ("America/Toronto",)),
        },
        0.55,
    ),
    Region(
        "EMEA",
        {
            "GB": (0.40, "GBP", ("Europe/London",)),
            "DE": (0.25, "EUR", ("Europe/Berlin",)),
            "FR": (0.20, "EUR", ("Europe/Paris",)),
            "NL": (0.15, "EUR", ("Europe/Amsterdam",)),
        },
        0.30,
    ),
    Region(
        "APAC",
        {
            "AU": (0.55, "USD", ("Australia/Sydney",)),
            "SG": (0.25, "USD", ("Asia/Singapore",)),
            "JP": (0.20, "USD", ("Asia/Tokyo",)),
        },
        0.15,
    ),
)

COMP_PLANS: tuple[CompPlan, ...] = (
    CompPlan("SDR", 55_000, 0.02, 1.5),
    CompPlan("AE", 95_000, 0.10, 1.8),
    CompPlan("AM", 85_000, 0.06, 1.5),
    CompPlan("Manager", 140_000, 0.02, 1.5),
)

PRODUCTS: tuple[tuple[str, float], ...] = (
    ("Core Platform", 0.45),
    ("Analytics Add-on", 0.20),
    ("Integrations Pack", 0.15),
    ("Premium Support", 0.10),
    ("Professional Services", 0.10),
)

INDUSTRIES: tuple[str, ...] = (
    "Technology",
    "Financial Services",
    "Healthcare",
    "Manufacturing",
    "Retail",
    "Education",
    "Media",
    "Logistics",
    "Energy",
    "Government",
)


@dataclass(frozen=True)
class WorldConfig:
    preset: str
    start_date: dt.date = dt.date(2024, 1, 1)
    history_days: int = 730
    reporting_currency: str = "USD"
    fiscal_year_start_month: int = 2  # fiscal year starts in February, as many SaaS companies' do

    # organisation
    sales_model: str = "assembly_line"  # island | assembly_line | pods
    territories_per_region_segment: int = 1
    ae_seats_per_territory: int = 3
    sdr_seats_per_territory: int = 2  # ignored by island; pods use one SDR per AE seat
    am_seats_per_territory: int = 1  # ignored by island; pods use one AM per AE seat
    annual_attrition: float = 0.18  # share of seats whose holder leaves in a year
    backfill_days: tuple[int, int] = (0, 0)  # successor starts this many days after a departure
    ramp_days: int = 90  # a new hire reaches full productivity after this many days
    ramp_skill_penalty: float = 0.6
    skill_sd: float = 0.45
    optimism_sd: float = 0.6
    quota_multiple_of_expected: float = 1.05  # quotas are set a bit above what the seat is expected to book

    # customers
    accounts: int = 900
    accounts_created_before_start: float = 0.7  # the rest are created during the history
    leads_per_day: float = 22.0
    lead_conversion_rate: float = 0.12
    inbound_lead_share: float = 0.45

    # deals
    opportunities_per_day: float = 5.5  # direct (not from leads), at start_date, before trend and seasonality
    annual_growth: float = 0.30
    monthly_seasonality: tuple[float, ...] = (0.8, 0.9, 1.0, 1.0, 1.05, 1.0, 0.85, 0.8, 1.05, 1.15, 1.15, 0.9)
    quarter_end_push_share: float = 0.35  # share of wins that reps pull into the last days of the quarter
    opportunity_type_mix: tuple[tuple[str, float], ...] = (
        ("New Business", 0.7),
        ("Expansion", 0.2),
        ("Renewal", 0.1),
    )
    engagement_weight: float = 0.9  # how strongly latent engagement drives winning
    luck_sd: float = 0.5  # what no feature can see
    regression_share: float = 0.07  # deals that move back a stage once
    stages: tuple[Stage, ...] = STAGES
    won_stage: Stage = WON_STAGE
    lost_stage: Stage = LOST_STAGE
    segments: tuple[Segment, ...] = SEGMENTS
    regions: tuple[Region, ...] = REGIONS
    comp_plans: tuple[CompPlan, ...] = COMP_PLANS
    products: tuple[tuple[str, float], ...] = PRODUCTS
    industries: tuple[str, ...] = INDUSTRIES

    # activities (per deal per day spent in a stage, before engagement scaling)
    activity_intensity: float = 1.0
    call_rate: float = 0.45
    email_rate: float = 0.35
    meeting_rate: float = 0.09
    prospecting_calls_per_lead: float = 2.5
    unknown_number_call_share: float = 0.04
    inbound_call_share: float = 0.12
    call_logged_share: float = 0.6
    call_logged_by_cti_share: float = 0.7  # logged calls that carry the telephony call id (Task.CallObject)
    meeting_logged_share: float = 0.55
    meeting_synced_share: float = 0.5  # logged meetings that carry the calendar UID
    meeting_cancel_share: float = 0.08
    meeting_reschedule_share: float = 0.10
    internal_meetings: bool = True

    # files
    drop_interval_days: int = 7  # `generate` writes one drop a week; `advance` one a day
    faults: FaultRates = field(default_factory=FaultRates)

    @property
    def end_date(self) -> dt.date:
        return self.start_date + dt.timedelta(days=self.history_days - 1)

    def with_overrides(self, **overrides: object) -> WorldConfig:
        return dataclasses.replace(self, **overrides)


PRESETS: dict[str, WorldConfig] = {
    # A few seconds: the test suite's world. Short history, every feature present.
    "tiny": WorldConfig(
        preset="tiny",
        history_days=150,
        ae_seats_per_territory=1,
        sdr_seats_per_territory=1,
        am_seats_per_territory=1,
        accounts=160,
        leads_per_day=6.0,
        opportunities_per_day=3.0,
        annual_attrition=0.6,
    ),
    # The default: about two years, ~60 reps, ~6,000 opportunities, ~300,000 activities.
    "demo": WorldConfig(preset="demo"),
    # About 1,000,000 opportunities and 20,000,000 activities.
    "bench": WorldConfig(
        preset="bench",
        territories_per_region_segment=25,
        ae_seats_per_territory=7,
        sdr_seats_per_territory=3,
        am_seats_per_territory=2,
        accounts=150_000,
        leads_per_day=2_600.0,
        opportunities_per_day=1_150.0,
        activity_intensity=0.33,
        prospecting_calls_per_lead=1.4,
        drop_interval_days=30,
    ),
}


def load_config(preset: str, **overrides: object) -> WorldConfig:
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[preset].with_overrides(**overrides) if overrides else PRESETS[preset]
