"""What the API shows of each record, and what it accepts; restricted fields only where a share allows."""

from __future__ import annotations

import datetime
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from cases.models import Case, CaseEvent, Child
from core.users import signed_in_user
from tracker.api.contract import StrictJSONBody
from tracker.api.representation import PlannedRepresentation
from tracker.models import (
    Flag,
    HandoverList,
    ListEntry,
    Organisation,
    Outcome,
    Reply,
    ReplyOutcome,
    Round,
    WebhookDelivery,
    WebhookEndpoint,
)
from tracker.services.webhooks import url_problem

HANDOVER_CHILD_FIELDS: tuple[str, ...] = (
    "id", "family_name", "given_name", "patronymic", "family_name_latin", "given_name_latin", "patronymic_latin",
    "aliases", "birth_date", "birth_date_precision", "sex", "home_settlement", "home_oblast", "circumstances",
    "category", "last_known_location", "last_known_on", "icrc_reference", "nib_reference", "updated_at",
)


class ModelSerializer(PlannedRepresentation, serializers.ModelSerializer):
    """DRF's model serializer, writing its output by a plan made once per serializer
    (`tracker.api.representation`): the same JSON, a fraction of the calls."""


class OrganisationSerializer(ModelSerializer):
    class Meta:
        model = Organisation
        fields = ("id", "name", "short_name", "kind", "country", "updated_at")


class ChildSerializer(ModelSerializer):
    """A child as handed over on a list: identity and circumstances, nothing restricted."""

    birth_date = serializers.SerializerMethodField(help_text="YYYY, YYYY-MM or YYYY-MM-DD, as precise as known.")

    class Meta:
        model = Child
        fields = HANDOVER_CHILD_FIELDS

    @extend_schema_field({"type": "string", "nullable": True, "pattern": r"^\d{4}(-\d{2}(-\d{2})?)?$"})
    def get_birth_date(self, child: Child) -> str | None:
        return None if child.birth_date is None else child.birth_date_display


class RestrictedChildSerializer(ChildSerializer):
    """With the guardian, relatives, contacts and notes, for shares that grant them."""

    class Meta(ChildSerializer.Meta):
        fields = (*HANDOVER_CHILD_FIELDS, *Child.RESTRICTED_FIELDS)


class CaseEntrySerializer(ModelSerializer):
    list = serializers.IntegerField(source="handover_list_id")
    list_reference = serializers.CharField(source="handover_list.reference")

    class Meta:
        model = ListEntry
        fields = ("id", "list", "list_reference", "position", "due_on", "reply_state", "last_outcome",
                  "answered_on", "age_at_listing")


class FlagSerializer(ModelSerializer):
    class Meta:
        model = Flag
        fields = ("id", "kind", "level", "entry", "due_on", "raised_at", "escalated_at", "resolved_at", "resolution")

    # A flag on an entry of a list the partner cannot read: the flag, not where it came from.
    HIDDEN_UNLESS_ENTRY_SEEN = ("entry", "due_on")

    def to_representation(self, flag: Flag) -> dict[str, Any]:
        shown = super().to_representation(flag)
        if not getattr(flag, "entry_seen", True):
            shown.update(dict.fromkeys(self.HIDDEN_UNLESS_ENTRY_SEEN))
        return shown


class CaseSerializer(ModelSerializer):
    child = serializers.SerializerMethodField()
    lists = CaseEntrySerializer(source="visible_entries", many=True, read_only=True)
    open_flags = FlagSerializer(many=True, read_only=True)
    restricted_fields_shared = serializers.SerializerMethodField()

    class Meta:
        model = Case
        fields = ("id", "status", "priority", "opened_on", "closed_on", "closing_reason", "updated_at",
                  "restricted_fields_shared", "child", "lists", "open_flags")

    @extend_schema_field(RestrictedChildSerializer)
    def get_child(self, case: Case) -> dict[str, Any]:
        # One serializer of each kind per page, not per case: building one was most of a page's time.
        kind = RestrictedChildSerializer if self.get_restricted_fields_shared(case) else ChildSerializer
        made = self.__dict__.setdefault("_child_serializers", {})
        if kind not in made:
            made[kind] = kind(context=self.context)
        return made[kind].to_representation(case.child)

    def get_restricted_fields_shared(self, case: Case) -> bool:
        return bool(getattr(case, "restricted_shared", False))


class CaseUpdateSerializer(StrictJSONBody, serializers.Serializer):
    """What a contributing partner may update: what is known of where the child is."""

    last_known_location = serializers.CharField(max_length=255, required=False, allow_blank=True)
    last_known_on = serializers.DateField(required=False, allow_null=True)

    def validate_last_known_on(self, value: datetime.date | None) -> datetime.date | None:
        if value is not None and value > timezone.localdate():
            raise serializers.ValidationError("cannot be in the future")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs:
            raise serializers.ValidationError("send last_known_location and/or last_known_on")
        return attrs


class TimelineEventSerializer(ModelSerializer):
    actor_kind = serializers.SerializerMethodField()
    message = serializers.SerializerMethodField()

    class Meta:
        model = CaseEvent
        fields = ("id", "kind", "from_status", "to_status", "happened_at", "actor_kind", "message")

    def get_actor_kind(self, event: CaseEvent) -> str:
        if event.actor_id is None:
            return "system"
        return "partner" if getattr(event.actor, "partner_organisation", None) else "case_worker"

    def get_message(self, event: CaseEvent) -> str | None:
        # Case workers' notes may name relatives or places: only for shares that grant restricted fields.
        if not self.context.get("restricted_shared"):
            return None
        organisation_id = self.context.get("organisation_id")
        if organisation_id is None:
            return event.message
        data = event.data or {}
        # A line about a list the partner cannot read would name it.
        if data.get("list") and data["list"] not in self.context.get("readable_lists", ()):
            return None
        # Another partner's contribution is told, not who made it.
        author = getattr(event.actor, "partner_organisation", None)
        if author is not None and author.pk != organisation_id and data.get("source"):
            return event.message.replace(str(data["source"]), gettext("another organisation"))
        return event.message


class EntryChildSerializer(ChildSerializer):
    class Meta(ChildSerializer.Meta):
        fields = ("id", "family_name", "given_name", "patronymic", "family_name_latin", "given_name_latin",
                  "patronymic_latin", "birth_date", "birth_date_precision", "sex", "home_settlement", "home_oblast")


class ListEntrySerializer(ModelSerializer):
    child = EntryChildSerializer(read_only=True)
    case = serializers.SerializerMethodField(help_text="The case's id, where the case is shared with you.")

    class Meta:
        model = ListEntry
        fields = ("id", "position", "due_on", "reply_state", "last_outcome", "answered_on", "claim_count",
                  "age_at_listing", "updated_at", "child", "case")

    def get_case(self, entry: ListEntry) -> int | None:
        return entry.case_id if getattr(entry, "case_shared", False) else None


class HandoverListSerializer(ModelSerializer):
    sender: serializers.PrimaryKeyRelatedField[Organisation] = serializers.PrimaryKeyRelatedField(read_only=True)
    recipient: serializers.PrimaryKeyRelatedField[Organisation] = serializers.PrimaryKeyRelatedField(read_only=True)
    round: serializers.SlugRelatedField[Round] = serializers.SlugRelatedField(
        slug_field="name", read_only=True, allow_null=True)
    children = serializers.IntegerField(source="n_entries", read_only=True)
    replied = serializers.IntegerField(source="n_answered", read_only=True)
    awaiting = serializers.IntegerField(source="n_awaiting", read_only=True)
    overdue = serializers.IntegerField(source="n_overdue", read_only=True)
    claimed = serializers.IntegerField(source="n_claimed", read_only=True,
                                       help_text="Children with at least one claim in a reply.")

    class Meta:
        model = HandoverList
        fields = ("id", "reference", "title", "sender", "recipient", "round", "status", "handed_over_on",
                  "response_due_on", "children", "replied", "awaiting", "overdue", "claimed", "updated_at")


class ReplyOutcomeSerializer(ModelSerializer):
    position = serializers.IntegerField(source="entry.position")

    class Meta:
        model = ReplyOutcome
        # claim_number: 1 for the entry's first claim, more for a further claim about a child answered before.
        fields = ("entry", "position", "outcome", "details", "reported_location", "claim_number")


class ReplySerializer(ModelSerializer):
    list = serializers.IntegerField(source="handover_list_id")
    outcomes = ReplyOutcomeSerializer(many=True, read_only=True)

    class Meta:
        model = Reply
        fields = ("id", "list", "received_from", "received_on", "reference", "notes", "outcomes", "updated_at")


class OutcomeInputSerializer(StrictJSONBody, serializers.Serializer):
    entry = serializers.IntegerField(required=False, min_value=1, help_text="The entry's id …")
    position = serializers.IntegerField(required=False, min_value=1, help_text="… or its number on the list.")
    outcome = serializers.ChoiceField(choices=Outcome.choices)
    details = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)
    reported_location = serializers.CharField(required=False, allow_blank=True, default="", max_length=255)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if ("entry" in attrs) == ("position" in attrs):
            raise serializers.ValidationError("give exactly one of entry and position")
        return attrs


class ReplyCreateSerializer(StrictJSONBody, serializers.Serializer):
    received_on = serializers.DateField()
    reference = serializers.CharField(required=False, allow_blank=True, default="", max_length=80)
    notes = serializers.CharField(required=False, allow_blank=True, default="", max_length=10000)
    # max_length goes to the list serializer `many` makes, which the stubs leave out.
    outcomes = OutcomeInputSerializer(many=True, allow_empty=False, max_length=20000)  # type: ignore[call-arg]

    def validate_received_on(self, value: datetime.date) -> datetime.date:
        if value > timezone.localdate():
            raise serializers.ValidationError("cannot be in the future")
        return value


class WebhookEndpointSerializer(StrictJSONBody, ModelSerializer):
    secret = serializers.CharField(write_only=True, min_length=16, max_length=200,
                                   help_text="Shared secret for the X-Tracker-Signature HMAC; never shown again.")
    events = serializers.ListField(child=serializers.ChoiceField(choices=WebhookEndpoint.Event.choices),
                                   required=False, help_text="Empty: every event.")

    class Meta:
        model = WebhookEndpoint
        fields = ("id", "url", "secret", "events", "is_active", "created_at")
        read_only_fields = ("created_at",)

    def validate_url(self, value: str) -> str:
        problem = url_problem(value)
        if problem:
            raise serializers.ValidationError(problem)
        return value

    # Each change is kept in the endpoint's history with who made it: the key's organisation or a
    # case worker. The request's own user is the one the API authenticated, not the session's.
    # (Registering goes through `webhook_endpoint_register`, which the view calls.)
    def update(self, instance: WebhookEndpoint, validated_data: dict[str, Any]) -> WebhookEndpoint:
        instance._history_user = signed_in_user(self.context["request"])  # type: ignore[attr-defined]
        return super().update(instance, validated_data)


class WebhookSecretRotationSerializer(StrictJSONBody, serializers.Serializer):
    secret = serializers.CharField(write_only=True, min_length=16, max_length=200,
                                   help_text="The new shared secret; never shown again.")


class WebhookDeliverySerializer(serializers.ModelSerializer):
    event = serializers.CharField(source="outbox_event.event", read_only=True)

    class Meta:
        model = WebhookDelivery
        fields = ("id", "endpoint", "event", "payload", "state", "attempts", "last_attempt_at", "last_status_code",
                  "last_error", "delivered_at", "created_at")
        read_only_fields = fields


class RemovedCaseSerializer(serializers.Serializer):
    """A case the caller may no longer see: its id and when, nothing else."""

    id = serializers.IntegerField(source="case_id", read_only=True)
    removed_at = serializers.DateTimeField(source="occurred_at", read_only=True)
