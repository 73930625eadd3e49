"""Service messages (English, also used by the API) shown on the pages in the user's language.

Services raise errors with plain English messages that the API returns as they are. The pages
translate the known ones through this table of patterns; an unknown message is shown unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from flask_babel import gettext


def _l(message: str) -> str:
    """Marks a message for extraction (pybabel keyword ``_l``); translated when shown."""
    return message


#: (pattern, translation); named groups fill the translation's placeholders.
_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(p), t)
    for p, t in [
        (r"^is required$", _l("is required")),
        (r"^is required for a person$", _l("is required for a person")),
        (r"^is required for an organization$", _l("is required for an organization")),
        (r"^must be at most (?P<n>\d+) characters$", _l("must be at most %(n)s characters")),
        (r"^must be at least (?P<n>\d+) characters$", _l("must be at least %(n)s characters")),
        (r"^(?P<value>.+) is not an email address$", _l("%(value)s is not an email address")),
        (r"^(?P<value>.+) is listed twice$", _l("%(value)s is listed twice")),
        (r"^only one email can be primary$", _l("only one email can be primary")),
        (r"^must be a date \(YYYY-MM-DD\)$", _l("must be a date (YYYY-MM-DD)")),
        (r"^cannot be in the future$", _l("cannot be in the future")),
        (
            r"^must be a web address such as https://example\.com$",
            _l("must be a web address such as https://example.com"),
        ),
        (r"^(?P<value>.+) is not in the (?P<list>.+) list$", _l("%(value)s is not in the list")),
        (r"^(?P<value>.+) is not a known language code$", _l("%(value)s is not a known language")),
        (r"^(?P<value>.+) is not a known country code$", _l("%(value)s is not a known country")),
        (r"^a phone number is required$", _l("a phone number is required")),
        (
            r"^(?P<value>.+) is not a phone number \(unknown country code.*\)$",
            _l("%(value)s is not a phone number: unknown country code, write it as +<country code>…"),
        ),
        (
            r"^(?P<value>.+) is not a phone number \(it does not look like a number\)$",
            _l("%(value)s is not a phone number: it does not look like a number"),
        ),
        (
            r"^(?P<value>.+) is not a phone number \(too short\)$",
            _l("%(value)s is not a phone number: too short"),
        ),
        (
            r"^(?P<value>.+) is not a phone number \(too long\)$",
            _l("%(value)s is not a phone number: too long"),
        ),
        (r"^(?P<value>.+) is not a phone number \(.*\)$", _l("%(value)s is not a phone number")),
        (
            r"^(?P<value>.+) is not a possible phone number for its country$",
            _l("%(value)s is not a possible phone number for its country"),
        ),
        (r"^(?P<value>.+) is not a phone type \(.*\)$", _l("%(value)s is not a phone type")),
        (r"^must be one of: (?P<choices>.+)$", _l("must be one of: %(choices)s")),
        (r"^must be an integer$", _l("must be a whole number")),
        (r"^must be a decimal number$", _l("must be a decimal number")),
        (r"^must be a finite decimal number$", _l("must be a decimal number")),
        (r"^must be true or false$", _l("must be yes or no")),
        (r"^must be an http\(s\) URL$", _l("must be a web address such as https://example.com")),
        (r"^must be an email address$", _l("must be an email address")),
        (r"^must be a phone number$", _l("must be a phone number")),
        (r"^must be a string$", _l("must be text")),
        (
            r"^(?P<wrong>.+) not among: (?P<choices>.+)$",
            _l("%(wrong)s is not among the choices: %(choices)s"),
        ),
        (r"^this page is for administrators$", _l("this page is for administrators")),
        (r"^choose the tag to keep$", _l("choose the tag to keep")),
        (r"^choose a user$", _l("choose a user")),
        (r"^select at least one contact$", _l("select at least one contact")),
        (r"^at most (?P<n>\d+) contacts at once$", _l("at most %(n)s contacts at once")),
        (r"^unexpected error \(logged\)$", _l("unexpected error (logged)")),
        (r"^no such custom field$", _l("no such custom field")),
        (
            r"^this field does not apply to a (?P<kind>\w+)$",
            _l("this field does not apply to this kind of contact"),
        ),
        (r"^contact (?P<id>\d+) does not exist$", _l("this contact does not exist (any more)")),
        (r"^a contact cannot be linked to itself$", _l("a contact cannot be linked to itself")),
        (r"^only a person belongs to an organization$", _l("only a person belongs to an organization")),
        (
            r"^contact (?P<id>\d+) is a person, not an organization$",
            _l("this contact is a person, not an organization"),
        ),
        (r"^reports-to links two people$", _l("a person can only report to another person")),
        (r"^this would make a reporting loop$", _l("this would make a reporting loop")),
        (r"^only a person has a role in an organization$", _l("only a person has a role in an organization")),
        (
            r"^no contact has exactly this name; pick one in the list$",
            _l("no contact has exactly this name; pick one in the list"),
        ),
        (
            r"^several contacts have this name; pick one in the list$",
            _l("several contacts have this name; pick one in the list"),
        ),
        (r"^this team does not exist$", _l("this team does not exist")),
        (r"^user (?P<id>\d+) does not exist$", _l("this user does not exist")),
        (r"^team (?P<id>.+) does not exist$", _l("this team does not exist")),
        (
            r"^the file is (?P<size>[\d.]+) MB; the limit is 10 MB$",
            _l("the file is %(size)s MB; the limit is 10 MB"),
        ),
        (
            r"^the file is not an image \(JPEG, PNG, GIF or WebP\)$",
            _l("the file is not an image (JPEG, PNG, GIF or WebP)"),
        ),
        (
            r"^you may read contact (?P<number>\S+) but not change it$",
            _l("you may read contact %(number)s but not change it"),
        ),
        (r"^contact (?P<id>\d+) not found$", _l("contact not found")),
        (
            r"^the contact was changed by someone else meanwhile; reload it and try again$",
            _l("the contact was changed by someone else meanwhile; reload it and try again"),
        ),
        (
            r"^contact (?P<number>\S+) is at version (?P<current>\d+), you sent version (?P<sent>\d+).*$",
            _l(
                "contact %(number)s was changed by someone else since you opened it; "
                "reload it and apply your change again"
            ),
        ),
        (r"^contact (?P<number>\S+) is not deleted$", _l("contact %(number)s is not deleted")),
        (
            r"^contact (?P<number>\S+) was merged; undo the merge to get it back$",
            _l("contact %(number)s was merged; undo the merge to get it back"),
        ),
        (r"^must be 'internal' or 'customer'$", _l("must be internal or customer")),
        (r"^must be 'info' or 'blocking'$", _l("must be information or blocking")),
        (r"^a label is required$", _l("a label is required")),
        (
            r"^use lowercase letters, digits and underscores$",
            _l("use lowercase letters, digits and underscores"),
        ),
        (
            r"^(?P<list>\w+) '(?P<key>.+)' ships with crmcore and cannot be deleted; relabel it instead$",
            _l("%(key)s ships with crmcore and cannot be deleted; relabel it instead"),
        ),
        (
            r"^(?P<list>\w+) '(?P<key>.+)' is used by (?P<n>\d+) record\(s\); change them first$",
            _l("%(key)s is used by %(n)s record(s); change them first"),
        ),
        (
            r"^tag '(?P<name>.+)' already exists: merge the two tags instead$",
            _l("tag %(name)s already exists: merge the two tags instead"),
        ),
        (r"^tag '(?P<name>.+)' already exists$", _l("tag %(name)s already exists")),
        (
            r"^name at least one tag other than the target$",
            _l("choose at least one tag other than the target"),
        ),
        (
            r"^a user with email (?P<email>\S+) already exists$",
            _l("a user with email %(email)s already exists"),
        ),
        (r"^is not your current password$", _l("is not your current password")),
        (r"^is required \(at most 120 characters\)$", _l("is required (at most 120 characters)")),
        (r"^team '(?P<name>.+)' already exists$", _l("team %(name)s already exists")),
        (r"^custom field '(?P<key>.+)' already exists$", _l("custom field %(key)s already exists")),
        (
            r"^custom field '(?P<key>.+)' is defined by a plugin and cannot be changed here$",
            _l("custom field %(key)s is defined by a plugin and cannot be changed here"),
        ),
        (
            r"^the type of an existing field cannot change; create a new field$",
            _l("the type of an existing field cannot change; create a new field"),
        ),
        (
            r"^field '.+': a (?P<type>\w+) field needs choices$",
            _l("a choice field needs choices"),
        ),
        (
            r"^field key '.+' must be lowercase letters, digits and underscores, starting with a letter$",
            _l("use lowercase letters, digits and underscores, starting with a letter"),
        ),
        (
            r"^is required: lowercase letters, digits, - and _, starting with a letter \(at most 63\)$",
            _l("is required: lowercase letters, digits, - and _, starting with a letter (at most 63)"),
        ),
        (r"^unknown channel '(?P<channel>.*)' \(available: (?P<known>.+)\)$", _l("choose a channel")),
        (r"^is required for (?P<channel>\S+) templates$", _l("is required for %(channel)s templates")),
        (r"^(?P<channel>\S+) messages have no subject$", _l("%(channel)s messages have no subject")),
        (
            r"^a template '(?P<key>.+)' for (?P<channel>\S+) in (?P<language>\S+) already exists \(id \d+\)$",
            _l("a template %(key)s already exists for %(channel)s in this language"),
        ),
        (r"^unknown placeholder: (?P<detail>.+)$", _l("unknown placeholder (%(detail)s)")),
        (r"^line (?P<line>\d+): (?P<detail>.+)$", _l("line %(line)s: %(detail)s")),
        (r"^cannot (?P<purpose>.+) for (?P<name>.+?): (?P<why>.+)$", _l("blocked for %(name)s: %(why)s")),
        # Generic forms last: the specific ones above win.
        (r"^(?P<list>\w+) '(?P<key>.+)' already exists$", _l("%(key)s already exists")),
    ]
]


def translate(message: str) -> str:
    """``message`` in the page's language when it is a known service message, else unchanged."""
    text = str(message)
    for pattern, translation in _PATTERNS:
        match = pattern.match(text)
        if match:
            values = {k: v.strip("'\"") for k, v in match.groupdict().items()}
            return gettext(translation, **values)
    return text


def translate_errors(errors: Mapping[str, list[str]]) -> dict[str, list[str]]:
    return {key: [translate(m) for m in messages] for key, messages in errors.items()}
