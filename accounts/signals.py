"""Signals the accounts app sends; higher layers connect to them in their AppConfig.ready()."""

from django.dispatch import Signal

# Sent inside the transaction that suspended (active=False) or reinstated (active=True) a
# user, by the one caller that changed the status; receivers write in that transaction
# (listings pauses or resumes the user's listings). kwargs: user_id, active.
user_active_changed = Signal()

# Sent inside the transaction that found a wallet active (accounts.wallets), so payouts that
# waited for it can go: escrow queues them after commit (escrow.apps). kwargs: user_id.
wallet_payouts_ready = Signal()
