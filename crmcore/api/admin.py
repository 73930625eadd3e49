"""Configuration endpoints: tags, custom field definitions and the configurable lists."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint

from crmcore.api.schemas import (
    CustomFieldPatchSchema,
    CustomFieldSchema,
    LookupPatchSchema,
    LookupSchema,
    TagMergeSchema,
    TagSchema,
)
from crmcore.auth import request_user
from crmcore.errors import NotFound
from crmcore.services import fields, lookups, tags

tags_blp = Blueprint("tags", __name__, url_prefix="/api/v1/tags", description="Tags: create, rename, merge")
fields_blp = Blueprint(
    "custom_fields",
    __name__,
    url_prefix="/api/v1/custom-fields",
    description="Custom field definitions (admin-defined and plugin-defined)",
)
lookups_blp = Blueprint(
    "lookups",
    __name__,
    url_prefix="/api/v1",
    description="Configurable lists: roles, phone types, origins, salutations",
)


def _tag(tag: Any, count: int | None = None) -> dict[str, Any]:
    return {"id": tag.id, "name": tag.name, "contacts": count}


@tags_blp.route("")
class Tags(MethodView):
    @tags_blp.response(200, TagSchema(many=True))
    def get(self) -> Any:
        """Every tag with the number of (not deleted) contacts carrying it."""
        return [_tag(tag, count) for tag, count in tags.list_tags()]

    @tags_blp.arguments(TagSchema)
    @tags_blp.response(201, TagSchema)
    def post(self, data: dict[str, Any]) -> Any:
        return _tag(tags.create_tag(data["name"]), 0)


@tags_blp.route("/<id:tag_id>")
class TagItem(MethodView):
    @tags_blp.arguments(TagSchema)
    @tags_blp.response(200, TagSchema)
    def patch(self, data: dict[str, Any], tag_id: int) -> Any:
        """Rename a tag (renaming onto an existing tag's name is refused: merge them instead)."""
        return _tag(tags.rename_tag(tag_id, data["name"], request_user(), "api"))

    @tags_blp.response(204)
    def delete(self, tag_id: int) -> None:
        """Delete a tag; contacts simply lose it."""
        tags.delete_tag(tag_id, request_user(), "api")


@tags_blp.route("/merge", methods=["POST"])
@tags_blp.arguments(TagMergeSchema)
@tags_blp.response(200, TagSchema)
def merge(data: dict[str, Any]) -> Any:
    """Merge tags into ``target_id``: every contact tagged with a source gets the target; sources are deleted."""
    return _tag(tags.merge_tags(data["source_ids"], data["target_id"], request_user(), "api"))


@fields_blp.route("")
class CustomFields(MethodView):
    @fields_blp.response(200, CustomFieldSchema(many=True))
    def get(self) -> Any:
        """Every custom field; ``source`` is ``admin`` or the plugin that defined it."""
        return [fields.definition_to_dict(f) for f in fields.all_fields().values()]

    @fields_blp.arguments(CustomFieldSchema)
    @fields_blp.response(201, CustomFieldSchema)
    def post(self, data: dict[str, Any]) -> Any:
        """Define a field: text, long_text, integer, decimal, date, boolean, choice, multi_choice, url, email, phone."""
        row = fields.create_definition(data)
        return fields.definition_to_dict(fields.all_fields()[row.key])


@fields_blp.route("/<string:key>")
class CustomFieldItem(MethodView):
    @fields_blp.response(200, CustomFieldSchema)
    def get(self, key: str) -> Any:
        definition = fields.all_fields().get(key)
        if definition is None:
            raise NotFound(f"custom field {key!r} not found")
        return fields.definition_to_dict(definition)

    @fields_blp.arguments(CustomFieldPatchSchema)
    @fields_blp.response(200, CustomFieldSchema)
    def patch(self, data: dict[str, Any], key: str) -> Any:
        row = fields.update_definition(key, data)
        return fields.definition_to_dict(fields.all_fields()[row.key])

    @fields_blp.response(204)
    def delete(self, key: str) -> None:
        """Delete an admin-defined field (stored values are kept and come back if it is defined again)."""
        fields.delete_definition(key)


def _lookup(value: Any) -> dict[str, Any]:
    return {
        "key": value.key,
        "label_en": value.label_en,
        "label_fr": value.label_fr,
        "position": value.position,
        "builtin": value.builtin,
    }


def _register_list(path: str, list_name: str) -> None:
    title = path.replace("-", " ")

    class Items(MethodView):
        @lookups_blp.response(200, LookupSchema(many=True))
        def get(self) -> Any:
            return [_lookup(v) for v in lookups.values(list_name)]

        @lookups_blp.arguments(LookupSchema)
        @lookups_blp.response(201, LookupSchema)
        def post(self, data: dict[str, Any]) -> Any:
            return _lookup(
                lookups.create(
                    list_name, data["label_en"], data.get("label_fr"), data.get("key"), data.get("position")
                )
            )

    class Item(MethodView):
        @lookups_blp.arguments(LookupPatchSchema)
        @lookups_blp.response(200, LookupSchema)
        def patch(self, data: dict[str, Any], key: str) -> Any:
            return _lookup(
                lookups.update(
                    list_name, key, data.get("label_en"), data.get("label_fr"), data.get("position")
                )
            )

        @lookups_blp.response(204)
        def delete(self, key: str) -> None:
            lookups.delete(list_name, key)

    Items.__doc__ = f"The {title} list."
    Items.__name__ = f"{list_name}_items"
    Item.__name__ = f"{list_name}_item"
    lookups_blp.route(f"/{path}", endpoint=f"{list_name}_items")(Items)
    lookups_blp.route(f"/{path}/<string:key>", endpoint=f"{list_name}_item")(Item)


for _path, _list in (
    ("roles", "role"),
    ("phone-types", "phone_type"),
    ("origins", "origin"),
    ("salutations", "salutation"),
):
    _register_list(_path, _list)
