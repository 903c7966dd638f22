"""Forms of the instructor's grading tools; each carries a CSRF token (flask-wtf)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import Field, HiddenField, StringField, TextAreaField
from wtforms.validators import AnyOf, DataRequired, Length, ValidationError

from web.services.overrides import MAX_COMMENT


class OverrideForm(FlaskForm):
    """Set (or remove) a student's score on one assignment, saying why."""

    score = StringField("Score")
    comment = TextAreaField("Comment (why; kept in the audit trail)", validators=[
        DataRequired(message="write a comment that says why the score changes: it is kept in the audit "
                             "trail"),
        Length(max=MAX_COMMENT, message=f"keep the comment under {MAX_COMMENT} characters")])
    # Which of the form's two buttons was pressed (they carry it; it is never rendered as an input).
    action = HiddenField(validators=[AnyOf(("set", "clear"),
                                           message="press Set override or Remove override")])

    def validate_score(self, field: Field) -> None:
        """A number when setting (a comma is read as the decimal point); ignored when removing."""
        if self.action.data != "set":
            return
        text = (field.data or "").strip()
        if not text:
            raise ValidationError("enter the score to give, or press Remove override")
        try:
            float(text.replace(",", "."))
        except ValueError:
            raise ValidationError(f"{text[:20]!r} is not a number: enter a score such as 7.5") from None

    def value(self) -> float | None:
        """The score to set, or None to remove the override."""
        return float(self.score.data.strip().replace(",", ".")) if self.action.data == "set" else None


class RevokeForm(FlaskForm):
    """Revoke an extension; `back` is the id of the student page to return to (never a URL: no open
    redirect), empty for the extensions page."""

    back = HiddenField()
