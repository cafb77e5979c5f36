"""Offline demo agent: an order desk with two tools over a simulated database, in two releases.

`evalplatform.demo.agent:OrderAgent` is the agent suite's target (datasets/agent/). Release
orders-v1 checks an order's status before cancelling; orders-v2 cancels straight away, a realistic
tool-misuse defect the suite's outcome graders catch (see brains.py).
"""

from evalplatform.demo.agent.agent import OrderAgent
from evalplatform.demo.agent.brains import BRAINS

__all__ = ["BRAINS", "OrderAgent"]
