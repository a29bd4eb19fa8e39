"""The proxy-bidding rules now live in `listings.rules` (the lowest layer that uses them).

Re-exported here for code written against `bidding.rules`; new code imports
`listings.rules`.
"""

from listings.rules import *  # noqa: F403
