"""The states and cities the synthetic listings come from.

Each state has its name as the Realtor dataset spells it and the median price of a typical home
there (about 1,800 sq ft, 3 beds) in 2024 dollars. Each city has a real range of its zip codes,
written as the dataset stores them (leading zeros lost: Boston 02108 is 2108), a price factor
relative to its state, and a relative share of the state's listings.

The New England states and Puerto Rico are those at the start of the real file. The others are
chosen so that, sorted by name, Massachusetts is the fifth state: the data API gives group 5 the
fifth state, and the real server gave group 5 Massachusetts.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class City:
    name: str
    zip_low: int
    zip_high: int
    price_factor: float
    weight: float  # relative number of listings within the state

    def __post_init__(self) -> None:
        if not 0 < self.zip_low <= self.zip_high <= 99_999:
            raise ValueError(f"{self.name}: bad zip range {self.zip_low}-{self.zip_high}")
        if self.price_factor <= 0 or self.weight <= 0:
            raise ValueError(f"{self.name}: price factor and weight must be positive")


@dataclass(frozen=True)
class State:
    name: str
    price_level: float  # median $ of a typical home
    cities: tuple[City, ...]


# One city per line reads best as a table.
# fmt: off
STATES: tuple[State, ...] = (
    State("Connecticut", 400_000, (
        City("Hartford", 6103, 6120, 0.60, 5),
        City("New Haven", 6510, 6519, 0.75, 5),
        City("Bridgeport", 6604, 6610, 0.70, 5),
        City("Stamford", 6901, 6907, 1.55, 4),
        City("Greenwich", 6830, 6836, 3.20, 2),
        City("Waterbury", 6702, 6710, 0.55, 4),
        City("Norwalk", 6850, 6856, 1.35, 3),
        City("Danbury", 6810, 6811, 1.00, 3),
        City("Middletown", 6457, 6457, 0.80, 2),
    )),
    State("Florida", 410_000, (
        City("Miami", 33125, 33196, 1.20, 10),
        City("Orlando", 32801, 32839, 0.95, 7),
        City("Tampa", 33602, 33637, 1.00, 7),
        City("Jacksonville", 32202, 32277, 0.78, 8),
        City("Tallahassee", 32301, 32317, 0.70, 3),
        City("Fort Lauderdale", 33301, 33334, 1.30, 4),
        City("Naples", 34102, 34120, 1.90, 3),
        City("Gainesville", 32601, 32614, 0.75, 2),
        City("Sarasota", 34231, 34243, 1.15, 3),
    )),
    State("Maine", 360_000, (
        City("Portland", 4101, 4103, 1.35, 5),
        City("Bangor", 4401, 4401, 0.75, 3),
        City("Lewiston", 4240, 4240, 0.70, 3),
        City("Auburn", 4210, 4210, 0.75, 2),
        City("Augusta", 4330, 4330, 0.70, 2),
        City("Brunswick", 4011, 4011, 1.10, 2),
        City("Biddeford", 4005, 4005, 1.00, 2),
        City("Bar Harbor", 4609, 4609, 1.60, 1),
        City("Waterville", 4901, 4901, 0.60, 2),
    )),
    State("Maryland", 400_000, (
        City("Baltimore", 21201, 21239, 0.60, 10),
        City("Annapolis", 21401, 21409, 1.35, 3),
        City("Bethesda", 20814, 20817, 2.40, 2),
        City("Silver Spring", 20901, 20910, 1.25, 4),
        City("Rockville", 20850, 20855, 1.45, 3),
        City("Frederick", 21701, 21704, 1.05, 3),
        City("Columbia", 21044, 21046, 1.20, 3),
        City("Hagerstown", 21740, 21742, 0.70, 2),
        City("Salisbury", 21801, 21804, 0.70, 2),
    )),
    State("Massachusetts", 560_000, (
        City("Boston", 2108, 2137, 1.35, 10),
        City("Cambridge", 2138, 2142, 1.75, 3),
        City("Newton", 2458, 2468, 1.90, 2),
        City("Quincy", 2169, 2171, 1.10, 3),
        City("Worcester", 1601, 1610, 0.72, 6),
        City("Springfield", 1103, 1129, 0.50, 5),
        City("Lowell", 1850, 1854, 0.78, 4),
        City("New Bedford", 2740, 2746, 0.65, 3),
        City("Pittsfield", 1201, 1201, 0.55, 2),
        City("Plymouth", 2360, 2362, 0.95, 2),
    )),
    State("New Hampshire", 450_000, (
        City("Manchester", 3101, 3111, 0.85, 6),
        City("Nashua", 3060, 3064, 0.95, 5),
        City("Concord", 3301, 3305, 0.85, 3),
        City("Portsmouth", 3801, 3804, 1.50, 3),
        City("Dover", 3820, 3822, 0.90, 2),
        City("Keene", 3431, 3435, 0.70, 2),
        City("Hanover", 3755, 3755, 1.60, 1),
        City("Salem", 3079, 3079, 1.10, 2),
    )),
    State("New York", 480_000, (
        City("New York", 10001, 10282, 2.20, 8),
        City("Brooklyn", 11201, 11256, 1.90, 8),
        City("Bronx", 10451, 10475, 1.00, 4),
        City("Staten Island", 10301, 10314, 1.35, 4),
        City("Yonkers", 10701, 10710, 1.15, 3),
        City("Buffalo", 14201, 14228, 0.45, 5),
        City("Rochester", 14604, 14626, 0.45, 5),
        City("Syracuse", 13202, 13224, 0.42, 4),
        City("Albany", 12202, 12211, 0.60, 3),
        City("Ithaca", 14850, 14853, 0.75, 1),
    )),
    State("Puerto Rico", 190_000, (
        City("San Juan", 901, 926, 1.35, 8),
        City("Bayamon", 956, 961, 0.95, 5),
        City("Carolina", 979, 987, 1.00, 5),
        City("Ponce", 728, 734, 0.65, 4),
        City("Caguas", 725, 727, 0.80, 3),
        City("Guaynabo", 965, 971, 1.50, 3),
        City("Mayaguez", 680, 682, 0.60, 3),
        City("Arecibo", 612, 614, 0.55, 2),
        City("Dorado", 646, 646, 1.80, 2),
        City("Humacao", 791, 792, 0.75, 2),
    )),
    State("Rhode Island", 440_000, (
        City("Providence", 2903, 2909, 0.85, 8),
        City("Warwick", 2886, 2889, 0.85, 5),
        City("Cranston", 2920, 2921, 0.85, 4),
        City("Pawtucket", 2860, 2861, 0.75, 3),
        City("East Providence", 2914, 2916, 0.80, 3),
        City("Newport", 2840, 2841, 1.90, 2),
        City("Woonsocket", 2895, 2895, 0.70, 2),
        City("Westerly", 2891, 2891, 1.30, 2),
    )),
    State("Vermont", 350_000, (
        City("Burlington", 5401, 5408, 1.25, 5),
        City("Essex Junction", 5452, 5453, 1.10, 2),
        City("Rutland", 5701, 5702, 0.70, 3),
        City("Montpelier", 5601, 5604, 1.00, 2),
        City("Barre", 5641, 5641, 0.75, 2),
        City("Brattleboro", 5301, 5304, 0.85, 2),
        City("Bennington", 5201, 5201, 0.75, 2),
        City("Stowe", 5672, 5672, 2.00, 1),
    )),
)
# fmt: on


def find_state(name: str) -> State:
    """The state of that exact name; ValueError naming the valid states otherwise."""
    for state in STATES:
        if state.name == name:
            return state
    valid = ", ".join(state.name for state in STATES)
    raise ValueError(f"unknown state {name!r}; valid states: {valid}")
