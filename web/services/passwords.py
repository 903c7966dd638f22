"""The password policy: long enough, not too long, and not guessable (zxcvbn), applied wherever one is chosen.

NIST SP 800-63B's advice, which this follows: a minimum length, a check against common and
guessable passwords, no composition rules (no "one digit, one symbol"), no forced periodic
change. zxcvbn estimates how many guesses a password would take from dictionaries of common
passwords, names and words, keyboard patterns, dates and repeats; a score of 3 means about
10^8 guesses or more (safe against online guessing, which the login rate limit slows further).
"""

from __future__ import annotations

from zxcvbn import zxcvbn

from web.errors import ServiceError

MIN_LENGTH = 10
MAX_LENGTH = 200  # argon2 takes any length; this bounds the work a single request can ask for
MIN_SCORE = 3  # zxcvbn's 0-4 scale: 3 is "safely unguessable"
# zxcvbn's time grows with length; a password whose first 72 characters are strong is strong.
_SCORED_PREFIX = 72
ADVICE = (f"Use at least {MIN_LENGTH} characters; three or four unrelated words with a number "
          "between them are easy to remember and hard to guess.")


class WeakPassword(ServiceError):
    """A chosen password the policy refuses; the message says why and what to do."""

    status = 400


def check(password: str, *, username: str = "", others: tuple[str, ...] = ()) -> None:
    """Raise WeakPassword unless password is acceptable for this username (others: name, email...)."""
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"That password is too short ({len(password)} characters). {ADVICE}")
    if len(password) > MAX_LENGTH:
        raise WeakPassword(f"That password is too long ({len(password)} characters); the most is "
                           f"{MAX_LENGTH}.")
    name = username.strip().lower()
    # The username is public: a password may contain it only if the rest would pass on its own.
    if len(name) >= 3 and name in password.lower():
        rest = password.lower().replace(name, "")
        if len(rest) < MIN_LENGTH or _score(rest, others) < MIN_SCORE:
            raise WeakPassword("That password is mostly your username, which anyone can see: the rest of it "
                               f"is too short or too easy to guess. {ADVICE}")
    inputs = [v for v in (username, *others) if v]
    result = zxcvbn(password[:_SCORED_PREFIX], user_inputs=inputs, max_length=_SCORED_PREFIX)
    if result["score"] < MIN_SCORE:
        feedback = result["feedback"]
        why = feedback.get("warning") or "It follows a pattern that password guessers try early."
        raise WeakPassword(f"That password is too easy to guess: {why.rstrip('.')}. {ADVICE}")


def _score(password: str, inputs: tuple[str, ...]) -> int:
    return zxcvbn(password[:_SCORED_PREFIX], user_inputs=[v for v in inputs if v],
                  max_length=_SCORED_PREFIX)["score"]
