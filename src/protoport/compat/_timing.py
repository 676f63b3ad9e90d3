"""How long the environment and the peer wait (seconds): every wait is bounded,
so that what never happens fails the scenario instead of hanging it."""

#: How long a scenario waits for something that should happen (seconds).
WAIT_TIMEOUT = 2.0
#: How long the peer waits for bytes before it reports a failure (seconds).
PEER_TIMEOUT = 2.0
#: How long :meth:`Env.settle` lets the loop run when a scenario checks that
#: something does *not* happen (seconds).
SETTLE_TIME = 0.03
#: The polling step of :meth:`Env.wait_until` (seconds).
POLL_STEP = 0.005
