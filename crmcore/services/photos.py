"""Contact photos: any image Pillow reads, resized to fit 200x300, stored as JPEG or PNG."""

from __future__ import annotations

import io

from PIL import Image, UnidentifiedImageError

from crmcore.errors import ValidationError
from crmcore.extensions import db
from crmcore.models import ContactPhoto, User, utcnow
from crmcore.services import history
from crmcore.services.contacts import get_contact
from crmcore.services.transactions import transaction

MAX_BYTES = 10 * 1024 * 1024
BOX = (200, 300)


def normalise_image(data: bytes) -> tuple[bytes, str]:
    """Return the image resized to fit :data:`BOX` and its content type; ValidationError if unusable."""
    if len(data) > MAX_BYTES:
        raise ValidationError({"photo": [f"the file is {len(data) / 1048576:.1f} MB; the limit is 10 MB"]})
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        raise ValidationError({"photo": ["the file is not an image (JPEG, PNG, GIF or WebP)"]}) from None
    image.thumbnail(BOX)
    out = io.BytesIO()
    if image.mode in ("RGBA", "LA", "P"):
        image.save(out, "PNG", optimize=True)
        return out.getvalue(), "image/png"
    image.convert("RGB").save(out, "JPEG", quality=88)
    return out.getvalue(), "image/jpeg"


def set_photo(contact_id: int, data: bytes, user: User | None = None, source: str = "api") -> ContactPhoto:
    content, content_type = normalise_image(data)
    with transaction():
        contact = get_contact(contact_id, user, "write")
        photo = db.session.get(ContactPhoto, contact.id)
        if photo is None:
            photo = ContactPhoto(contact_id=contact.id)
            db.session.add(photo)
        photo.data, photo.content_type, photo.updated_at = content, content_type, utcnow()
        history.record(
            contact, "update", user, source, {"photo": (None, f"{content_type}, {len(content)} bytes")}
        )
    return photo


def get_photo(contact_id: int, user: User | None = None) -> ContactPhoto | None:
    contact = get_contact(contact_id, user)
    return db.session.get(ContactPhoto, contact.id)


def delete_photo(contact_id: int, user: User | None = None, source: str = "api") -> None:
    with transaction():
        contact = get_contact(contact_id, user, "write")
        photo = db.session.get(ContactPhoto, contact.id)
        if photo is not None:
            db.session.delete(photo)
            history.record(contact, "update", user, source, {"photo": ("image", None)})
