"""The account forms: change a password, and the instructor's reset and enable/disable buttons.

(The login form is web.forms.LoginForm, which predates this module.)
"""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import HiddenField, PasswordField
from wtforms.validators import AnyOf, DataRequired, EqualTo, Length

from web.services.passwords import MAX_LENGTH


class ChangePasswordForm(FlaskForm):
    """The current password, then the new one twice (a typo in an unseen field would lock one out)."""

    current = PasswordField("Current password",
                            validators=[DataRequired(message="type your current password")])
    new = PasswordField("New password", validators=[
        DataRequired(message="choose a new password"),
        Length(max=MAX_LENGTH, message=f"at most {MAX_LENGTH} characters")])
    repeat = PasswordField("New password again", validators=[
        DataRequired(message="type the new password again"),
        EqualTo("new", message="the two new passwords differ: type the same one in both boxes")])


class ResetPasswordForm(FlaskForm):
    """The instructor's "reset password" button; `next` is the page to return to."""

    next = HiddenField()


class SetActiveForm(FlaskForm):
    """The instructor's "disable"/"enable" button: active is "0" or "1"; `next` is the page to return to."""

    active = HiddenField(validators=[AnyOf(["0", "1"], message="active must be 0 (disable) or 1 (enable)")])
    next = HiddenField()
