"""Forms; each carries a CSRF token (flask-wtf)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import DateTimeLocalField, IntegerField, PasswordField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, NumberRange, Optional


class LoginForm(FlaskForm):
    """Username and password."""

    username = StringField("Username", validators=[DataRequired(), Length(max=80)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=200)])


class UploadForm(FlaskForm):
    """A notebook or module to grade."""

    file = FileField("Notebook (.ipynb) or module (.py)", validators=[FileRequired()])


class ButtonForm(FlaskForm):
    """A form that is only a button (regrade, revoke, logout): the CSRF token is its content."""


class TokenForm(FlaskForm):
    """A name for a new API token."""

    name = StringField("Token name", validators=[DataRequired(), Length(max=100)])


class ExtensionForm(FlaskForm):
    """A new due date for one student and assignment."""

    username = StringField("Student username", validators=[DataRequired(), Length(max=80)])
    assignment = SelectField("Assignment", validators=[DataRequired()])
    due_at = DateTimeLocalField("New due date (UTC)", format="%Y-%m-%dT%H:%M", validators=[DataRequired()])
    reason = TextAreaField("Reason", validators=[Optional(), Length(max=500)])


class RosterForm(FlaskForm):
    """A CSV of students."""

    file = FileField("Roster CSV (columns: username, name, email)", validators=[FileRequired()])


class SettingsForm(FlaskForm):
    """An assignment's score policy and hourly submission limit."""

    score_policy = SelectField("Score policy", choices=[("best", "best"), ("last", "last")])
    hourly_limit = IntegerField("Submissions per hour (0: no limit)",
                                validators=[Optional(), NumberRange(0, 1000)])
