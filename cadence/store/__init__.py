from cadence.store import account_models as account_models  # registers the account tables
from cadence.store import tracking_models as tracking_models  # registers the reply tables
