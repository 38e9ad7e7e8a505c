"""The API's endpoints. Each one starts from what the caller may see; anything else answers 404."""

from __future__ import annotations

import hashlib
import json
from typing import Any, cast

from django.db import connection
from django.db.models import BooleanField, Exists, Expression, F, OuterRef, Prefetch, QuerySet, Subquery, Value, When
from django.db.models import Case as Case_
from django.db.models.functions import Coalesce
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer

from cases.models import Case, CaseEvent, Child, RecordAccess
from cases.services import child_update_last_known, log_child_reads, read_log_insert
from core.bulk import keys_in
from core.prepared import run_prepared
from core.tasks import enqueue_on_commit
from core.users import signed_in_user
from tracker.api import documents
from tracker.api import serializers as s
from tracker.api.conditional import if_match_holds, if_none_match_holds
from tracker.api.contract import ContractView, StrictOrderingFilter
from tracker.api.errors import PreconditionFailed, PreconditionRequired
from tracker.api.filters import (
    CaseFilter,
    FilterBackend,
    HandoverListFilter,
    ListEntryFilter,
    RemovedCaseFilter,
    ReplyFilter,
    WebhookDeliveryFilter,
)
from tracker.api.idempotency import HEADER as IDEMPOTENCY_HEADER
from tracker.api.idempotency import idempotent
from tracker.api.pagination import DeliveryCursorPagination, RemovalCursorPagination, StableCursorPagination
from tracker.api.permissions import may_see_restricted_fields, viewer_of
from tracker.api.renderers import CSVRenderer, XLSXRenderer
from tracker.models import (
    Flag,
    HandoverList,
    ListEntry,
    Organisation,
    Reply,
    ReplyOutcome,
    ShareEvent,
    WebhookDelivery,
    WebhookEndpoint,
)
from tracker.selectors import (
    Viewer,
    handover_lists_with_counts,
    live_shares,
    visible_cases,
    visible_flags,
    visible_list,
    visible_lists,
)
from tracker.services import webhooks
from tracker.services.exchange import OutcomeInput, reply_record
from tracker.services.exports import CSV_CONTENT_TYPE, XLSX_CONTENT_TYPE, attachment, cases_csv, cases_xlsx, in_chunks
from tracker.tasks import deliver_webhook

ORDERING = ["updated_at", "id"]

IDEMPOTENCY_PARAMETER = OpenApiParameter(
    IDEMPOTENCY_HEADER, str, OpenApiParameter.HEADER, required=False,
    description="Any unique string: sending the same request again with it creates nothing new.",
)
IF_MATCH_PARAMETER = OpenApiParameter(
    "If-Match", str, OpenApiParameter.HEADER, required=True,
    description="The ETag of the case as you last read it.",
)

IF_NONE_MATCH_PARAMETER = OpenApiParameter(
    "If-None-Match", str, OpenApiParameter.HEADER, required=False,
    description="ETags of copies you hold: answered 304, with no body, while one of them is current.",
)


class PartnerViewSet(ContractView, viewsets.GenericViewSet):
    # Query parameters an action reads itself, beside its filter set's and its pagination's.
    extra_query_parameters: tuple[str, ...] = ()
    # Ids are numbers: anything else is no record, and answers 404 before any query.
    lookup_value_regex = r"[0-9]+"
    # The stubs declare the backends per instance of a generic view, so reading the class's is refused.
    filter_backends = [*viewsets.GenericViewSet.filter_backends, StrictOrderingFilter]  # type: ignore[misc]
    ordering_fields = ORDERING

    @property
    def viewer(self) -> Viewer:
        return viewer_of(self.request)

    def log_reads(self, child_ids: list[int]) -> None:
        log_child_reads(child_ids, **self.read_log_arguments())

    def read_log_arguments(self) -> dict[str, Any]:
        """Who read, through which door and path: `log_child_reads`'s arguments beside the children."""
        return {"channel": RecordAccess.Channel.API, "path": self.request.get_full_path(),
                "user": signed_in_user(self.request), **self.viewer.read_log_fields()}


@extend_schema_view(list=extend_schema(summary="Organisations"), retrieve=extend_schema(summary="An organisation"))
class OrganisationViewSet(PartnerViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin):
    serializer_class = s.OrganisationSerializer
    staff_permissions = {"read": ("tracker.view_organisation",)}
    queryset = Organisation.objects.filter(is_active=True)


def case_etag(case: Case) -> str:
    stamp = f"{case.pk}:{case.updated_at.isoformat()}:{case.child.updated_at.isoformat()}"
    return '"' + hashlib.sha256(stamp.encode()).hexdigest()[:32] + '"'


@extend_schema_view(
    list=extend_schema(summary="Cases shared with you"),
    retrieve=extend_schema(summary="A case, with its child", parameters=[IF_NONE_MATCH_PARAMETER],
                           responses={200: s.CaseSerializer, 304: OpenApiResponse(
                               description="Not modified: your copy, by its ETag in If-None-Match, is current.")}),
)
class CaseViewSet(PartnerViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin):
    serializer_class = s.CaseSerializer
    filterset_class = CaseFilter
    http_method_names = ["get", "patch", "head", "options"]
    staff_permissions = {
        "read": ("cases.view_case", "cases.view_child"),
        "timeline": ("cases.view_case", "cases.view_child", "cases.view_caseevent"),
        "flags": ("cases.view_case", "tracker.view_flag"),
        "partial_update": ("cases.view_case", "cases.change_child"),
    }

    def get_queryset(self) -> QuerySet[Case]:
        return self.with_restricted_shared(visible_cases(self.viewer).select_related("child"))

    def with_restricted_shared(self, cases: QuerySet[Case]) -> QuerySet[Case]:
        """Each case with whether the caller may see its child's restricted fields."""
        viewer = self.viewer
        if viewer.is_staff:
            cases = cases.annotate(restricted_shared=Value(may_see_restricted_fields(self.request)))
        else:
            # Whether the share grants restricted fields: a scalar subquery, probed per case shown, where
            # an EXISTS was planned as a scan of all the partner's shares for a page of 100.
            granted = live_shares(viewer).filter(case=OuterRef("pk"), include_restricted=True)
            cases = cases.annotate(restricted_shared=Coalesce(
                Subquery(granted.values(granted_=Value(True, output_field=BooleanField()))[:1]),
                Value(False, output_field=BooleanField())))
        return cases

    def visible_entries(self) -> QuerySet[ListEntry]:
        return ListEntry.objects.filter(visible_list(self.viewer, "handover_list__")).select_related(
            "handover_list").order_by("handover_list__handed_over_on", "id")

    def open_flags(self) -> QuerySet[Flag]:
        return visible_flags(self.viewer).filter(resolved_at__isnull=True).order_by("-level", "id")

    def with_related(self, cases: list[Case]) -> list[Case]:
        """Each case's entries on lists the caller may see and its open flags, in two queries for the
        page (the keys travel as one parameter; a prefetch prepared each key on its own)."""
        ids = [case.pk for case in cases]
        entries: dict[int, list[ListEntry]] = {pk: [] for pk in ids}
        flags: dict[int, list[Flag]] = {pk: [] for pk in ids}
        if ids:
            for entry in self.visible_entries().filter(case_id__in=keys_in(ids)):
                entries[entry.case_id].append(entry)
            for flag in self.open_flags().filter(case_id__in=keys_in(ids)):
                flags[flag.case_id].append(flag)
        for case in cases:
            case.visible_entries = entries[case.pk]  # type: ignore[attr-defined]
            case.open_flags = flags[case.pk]  # type: ignore[attr-defined]
        return cases

    def documents(self) -> Expression:
        """Each case's JSON as the serializers write it, made by PostgreSQL (`tracker.api.documents`)."""
        zone = documents.current_zone()
        context = self.get_serializer_context()
        entry = documents.document(s.CaseEntrySerializer(context=context), ListEntry, zone)
        flag = documents.document(s.FlagSerializer(context=context), Flag, zone)
        flag.replace({name: (lambda value: Case_(When(entry_seen=True, then=value), default=None))
                      for name in s.FlagSerializer.HIDDEN_UNLESS_ENTRY_SEEN})
        children = {
            restricted: documents.document(kind(context=context), Child, zone, path="child__",
                                           methods={"birth_date": documents.birth_date_sql})
            for restricted, kind in ((True, s.RestrictedChildSerializer), (False, s.ChildSerializer))}
        return documents.document(
            s.CaseSerializer(context=context), Case, zone,
            methods={
                "restricted_fields_shared": lambda _path: F("restricted_shared"),
                "child": lambda _path: Case_(When(restricted_shared=True, then=children[True]),
                                             default=children[False], output_field=documents.JSON),
            },
            nested={
                "lists": documents.aggregated(self.visible_entries(), "case_id", entry,
                                              ("handover_list__handed_over_on", "id")),
                "open_flags": documents.aggregated(self.open_flags(), "case_id", flag, ("-level", "id")),
            })

    def page_written_by_database(self, request: Request) -> bool:
        """JSON pages on PostgreSQL; the browsable API and SQLite go through the serializers."""
        return (connection.vendor == "postgresql" and type(request.accepted_renderer) is JSONRenderer
                and self.paginator is not None)

    def page_documents(self, ids: list[int], child_ids: list[int]) -> dict[int, str]:
        """The JSON text of each case in `ids`, by id, and the read log's rows of `child_ids`, in one
        statement (the log's insert as a WITH clause): the page and its log go to the database and
        are committed together, in one round trip. The documents' statement is built and compiled
        once per kind of viewer (`documents.STATEMENTS`): only the ids change between pages."""
        viewer = self.viewer
        key = (viewer.organisation.pk if viewer.organisation else None,
               viewer.is_staff and may_see_restricted_fields(self.request), documents.current_zone())

        def build(ids: documents.Keys) -> QuerySet[Any]:
            return self.get_queryset().filter(pk__in=ids.sql()).order_by().values("id").annotate(
                document=documents.as_text(self.documents()))

        page, page_params = documents.STATEMENTS.statement(key, build, ids)
        log, log_params = read_log_insert(child_ids, **self.read_log_arguments())
        return dict(run_prepared(f"WITH read_log AS ({log}) {page}", [*log_params, *page_params]))

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        if self.page_written_by_database(request):
            queryset = self.filter_queryset(visible_cases(self.viewer))
            # The page's keys by the ORM (filters, order, cursor), then the cases' JSON from the database,
            # joined as it comes: no model instance and no serializer call per case.
            paginator = cast(StableCursorPagination, self.paginator)
            keys = paginator.paginate_queryset(queryset.values("id", "updated_at", "child_id"), request, view=self)
            assert keys is not None  # noqa: S101 the page size has a default
            texts = self.page_documents([row["id"] for row in keys], [row["child_id"] for row in keys]) if keys else {}
            links = (f'{{"next":{json.dumps(paginator.get_next_link())},'
                     f'"previous":{json.dumps(paginator.get_previous_link())},"results":[')
            body = "".join((links, ",".join(texts[row["id"]] for row in keys), "]}"))
            return HttpResponse(body.encode(),  # type: ignore[return-value]
                                content_type=request.accepted_renderer.media_type)
        queryset = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(queryset)
        rows = self.with_related(list(page if page is not None else queryset))
        self.log_reads([case.child_id for case in rows])
        data = self.get_serializer(rows, many=True).data
        return self.get_paginated_response(data) if page is not None else Response(data)

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        case = self.with_related([self.get_object()])[0]
        self.log_reads([case.child_id])
        etag = case_etag(case)
        if if_none_match_holds(request.headers.get("If-None-Match"), etag):
            return Response(status=status.HTTP_304_NOT_MODIFIED, headers={"ETag": etag})
        return Response(self.get_serializer(case).data, headers={"ETag": etag})

    @extend_schema(
        summary="Update what is known of where the child is",
        parameters=[IF_MATCH_PARAMETER],
        request=s.CaseUpdateSerializer,
        responses={200: s.CaseSerializer, 412: OpenApiResponse(description="The case changed since you read it."),
                   428: OpenApiResponse(description="If-Match is missing.")},
    )
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        case = self.get_object()
        viewer = self.viewer
        if not viewer.is_staff and not live_shares(viewer).filter(case=case, can_contribute=True).exists():
            raise PermissionDenied("This case is shared with you to read only.")
        if_match = request.headers.get("If-Match")
        if not if_match:
            raise PreconditionRequired()
        if not if_match_holds(if_match, case_etag(case)):
            raise PreconditionFailed()
        update = s.CaseUpdateSerializer(data=request.data)
        update.is_valid(raise_exception=True)
        source = str(viewer.organisation) if viewer.organisation else "a case worker"
        child_update_last_known(child=case.child, actor=signed_in_user(request), source=source,
                                expected_updated_at=case.child.updated_at, **update.validated_data)
        case = self.with_related([self.get_queryset().get(pk=case.pk)])[0]
        self.log_reads([case.child_id])
        return Response(self.get_serializer(case).data, headers={"ETag": case_etag(case)})

    @extend_schema(summary="The case's timeline", responses=s.TimelineEventSerializer(many=True))
    @action(detail=True, methods=["get"], filter_backends=[], pagination_class=None)
    def timeline(self, request: Request, pk: str | None = None) -> Response:
        case = self.get_object()
        events = list(CaseEvent.objects.filter(case=case).select_related("actor__partner_organisation")
                      .order_by("happened_at", "id"))
        context = {**self.get_serializer_context(), "restricted_shared": case.restricted_shared}
        viewer = self.viewer
        if viewer.organisation is not None:
            named = {str(event.data["list"]) for event in events if (event.data or {}).get("list")}
            context.update(organisation_id=viewer.organisation.pk, readable_lists=set(
                visible_lists(viewer).filter(reference__in=named).values_list("reference", flat=True)))
        self.log_reads([case.child_id])
        return Response(s.TimelineEventSerializer(events, many=True, context=context).data)

    @extend_schema(summary="The case's flags, open and resolved", responses=s.FlagSerializer(many=True))
    @action(detail=True, methods=["get"], filter_backends=[], pagination_class=None)
    def flags(self, request: Request, pk: str | None = None) -> Response:
        case = self.get_object()
        flags = visible_flags(self.viewer).filter(case=case).order_by("raised_at", "id")
        return Response(s.FlagSerializer(flags, many=True).data)

    @extend_schema(
        summary="Cases you may no longer see, since a time",
        description=(
            "The other half of incremental sync: each case whose share with you was revoked at or after "
            "`since` and is not shared with you now, by id and the time it was removed, nothing else. "
            "Delete them from your copy; what was added or changed comes from `updated_since` "
            "(docs/api-sync.md)."
        ),
        parameters=[OpenApiParameter("since", OpenApiTypes.DATETIME, required=True,
                                     description="Removed at or after (ISO 8601)")],
        responses=s.RemovedCaseSerializer(many=True),
    )
    # `since` is read by the filter set below, not by a filter backend: named for the strict contract.
    @action(detail=False, methods=["get"], filter_backends=[], pagination_class=RemovalCursorPagination,
            serializer_class=s.RemovedCaseSerializer, extra_query_parameters=("since",))
    def removed(self, request: Request) -> Response:
        viewer = self.viewer
        if viewer.organisation is None:
            removals = ShareEvent.objects.none()  # a case worker sees every case: nothing is ever removed
        else:
            removals = ShareEvent.objects.filter(organisation=viewer.organisation, kind=ShareEvent.Kind.REVOKED)
            removals = removals.exclude(case_id__in=live_shares(viewer).values("case_id"))
        since = RemovedCaseFilter(request.query_params, queryset=removals.only("id", "case_id", "occurred_at"),
                                  request=request)
        if not since.is_valid():
            raise ValidationError(since.errors)
        page = self.paginate_queryset(since.qs)
        return self.get_paginated_response(s.RemovedCaseSerializer(page, many=True).data)

    @extend_schema(
        summary="Export the cases shared with you, as CSV or XLSX",
        description=(
            "The same cases, filters and ordering as the list, in one file: one row per case with its child. "
            "The guardian, relatives, contacts and notes are filled in only for cases whose share grants "
            "them (`restricted_fields_shared`). Every exported child is logged as read. CSV is streamed."
        ),
        parameters=[OpenApiParameter("format", str, enum=["csv", "xlsx"], description="The file's format (csv).")],
        responses={(200, "text/csv"): OpenApiTypes.BINARY, (200, XLSX_CONTENT_TYPE): OpenApiTypes.BINARY},
        filters=True,
    )
    @action(detail=False, methods=["get"], pagination_class=None, renderer_classes=[CSVRenderer, XLSXRenderer])
    def export(self, request: Request) -> HttpResponse | StreamingHttpResponse:
        viewer = self.viewer
        # Case workers' exports carry no restricted field; a partner's carry them where a share grants
        # them (tracker.services.exports says why).
        include_restricted = not viewer.is_staff
        path = request.get_full_path()

        def log_exported(chunk: list[Case]) -> None:
            log_child_reads([case.child_id for case in chunk], channel=RecordAccess.Channel.EXPORT, path=path,
                            user=signed_in_user(request), **viewer.read_log_fields())

        cases = in_chunks(self.filter_queryset(self.get_queryset()).prefetch_related(
            Prefetch("list_entries", queryset=self.visible_entries(), to_attr="visible_entries"),
            Prefetch("flags", queryset=self.open_flags(), to_attr="open_flags"),
        ), log_exported)
        filename = f"cases-{timezone.localdate():%Y-%m-%d}"
        if request.accepted_renderer.format == "xlsx":
            return HttpResponse(cases_xlsx(cases, include_restricted=include_restricted),
                                content_type=XLSX_CONTENT_TYPE,
                                headers=attachment(f"{filename}.xlsx"))
        return StreamingHttpResponse(cases_csv(cases, include_restricted=include_restricted),
                                     content_type=CSV_CONTENT_TYPE,
                                     headers=attachment(f"{filename}.csv"))


@extend_schema_view(
    list=extend_schema(summary="Handover lists you sent, received or were shown"),
    retrieve=extend_schema(summary="A handover list with its counts"),
)
class HandoverListViewSet(PartnerViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin):
    serializer_class = s.HandoverListSerializer
    filterset_class = HandoverListFilter
    staff_permissions = {
        "read": ("tracker.view_handoverlist",),
        "replies": ("tracker.view_handoverlist", "tracker.add_reply", "tracker.add_replyoutcome"),
    }

    def get_queryset(self) -> QuerySet[HandoverList]:
        lists = visible_lists(self.viewer).select_related("round")
        return handover_lists_with_counts(lists, today=timezone.localdate())

    def get_serializer_class(self) -> type[BaseSerializer]:
        return s.ReplyCreateSerializer if self.action == "replies" else super().get_serializer_class()

    @extend_schema(
        summary="Post a reply to a list addressed to you",
        parameters=[IDEMPOTENCY_PARAMETER],
        request=s.ReplyCreateSerializer,
        responses={201: s.ReplySerializer},
    )
    @action(detail=True, methods=["post"], filter_backends=[], pagination_class=None)
    def replies(self, request: Request, pk: str | None = None) -> Response:
        handover_list = get_object_or_404(visible_lists(self.viewer), pk=pk)
        viewer = self.viewer
        if viewer.organisation is not None and handover_list.recipient_id != viewer.organisation.pk:
            raise PermissionDenied("Only the organisation this list was handed to may answer it.")

        def create() -> Response:
            payload = s.ReplyCreateSerializer(data=request.data)
            payload.is_valid(raise_exception=True)
            data = payload.validated_data
            recorded = reply_record(
                handover_list=handover_list, received_on=data["received_on"], actor=signed_in_user(request),
                received_from=viewer.organisation or handover_list.recipient, reference=data["reference"],
                notes=data["notes"],
                outcomes=[OutcomeInput(entry_id=o.get("entry"), position=o.get("position"), outcome=o["outcome"],
                                       details=o["details"], reported_location=o["reported_location"])
                          for o in data["outcomes"]],
            )
            reply = Reply.objects.prefetch_related(
                Prefetch("outcomes", queryset=ReplyOutcome.objects.select_related("entry"))
            ).get(pk=recorded.reply.pk)
            return Response(s.ReplySerializer(reply).data, status=status.HTTP_201_CREATED)

        return idempotent(request, create)


@extend_schema_view(list=extend_schema(summary="The children on a list, by number"))
class ListEntryViewSet(PartnerViewSet, mixins.ListModelMixin):
    """/lists/{list_pk}/entries/: a list's children as handed over, and each one's reply state."""

    serializer_class = s.ListEntrySerializer
    filterset_class = ListEntryFilter
    staff_permissions = {"read": ("tracker.view_handoverlist", "tracker.view_listentry", "cases.view_child")}
    ordering_fields = ["position", *ORDERING]

    def get_queryset(self) -> QuerySet[ListEntry]:
        viewer = self.viewer
        if getattr(self, "swagger_fake_view", False):
            return ListEntry.objects.none()
        handover_list = get_object_or_404(visible_lists(viewer), pk=self.kwargs["list_pk"])
        entries = handover_list.entries.select_related("child")
        if viewer.is_staff:
            return entries.annotate(case_shared=Value(True))
        return entries.annotate(case_shared=Exists(live_shares(viewer).filter(case=OuterRef("case"))))

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        self.log_reads([entry.child_id for entry in page or []])
        return self.get_paginated_response(self.get_serializer(page, many=True).data)


@extend_schema_view(list=extend_schema(summary="Replies to lists you can see"),
                    retrieve=extend_schema(summary="A reply"))
class ReplyViewSet(PartnerViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin):
    serializer_class = s.ReplySerializer
    filterset_class = ReplyFilter
    staff_permissions = {"read": ("tracker.view_reply", "tracker.view_replyoutcome")}

    def get_queryset(self) -> QuerySet[Reply]:
        return Reply.objects.filter(handover_list__in=visible_lists(self.viewer)).prefetch_related(
            Prefetch("outcomes", queryset=ReplyOutcome.objects.select_related("entry").order_by("entry__position"))
        )


@extend_schema_view(
    list=extend_schema(summary="Your webhook endpoints"),
    create=extend_schema(summary="Register a webhook endpoint (a webhook.ping is sent to it at once)"),
    retrieve=extend_schema(summary="A webhook endpoint"),
    partial_update=extend_schema(summary="Change a webhook endpoint (url, events, active)"),
    destroy=extend_schema(summary="Delete a webhook endpoint: it sends nothing more, and is kept in the history"),
)
class WebhookEndpointViewSet(PartnerViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin,
                             mixins.CreateModelMixin, mixins.UpdateModelMixin, mixins.DestroyModelMixin):
    serializer_class = s.WebhookEndpointSerializer
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    # Where partners' deliveries go is an administrator's matter.
    staff_permissions = {"read": ("tracker.view_webhookendpoint",), "write": ("tracker.change_webhookendpoint",)}

    def get_queryset(self) -> QuerySet[WebhookEndpoint]:
        viewer = self.viewer
        endpoints = WebhookEndpoint.objects.filter(deleted_at__isnull=True)
        return endpoints if viewer.is_staff else endpoints.filter(organisation=viewer.organisation)

    def perform_create(self, serializer: BaseSerializer) -> None:
        organisation = self.viewer.organisation
        if organisation is None:
            raise PermissionDenied("Case workers register webhooks for a partner in the admin.")
        data = serializer.validated_data
        try:
            endpoint, ping = webhooks.webhook_endpoint_register(
                organisation=organisation, url=data["url"], secret=data["secret"], events=data.get("events", []),
                actor=signed_in_user(self.request))
        except webhooks.EndpointRefused as refused:
            raise ValidationError(str(refused)) from refused
        serializer.instance = endpoint
        enqueue_on_commit(deliver_webhook, ping.pk)

    def perform_destroy(self, instance: WebhookEndpoint) -> None:
        webhooks.webhook_endpoint_delete(endpoint=instance, actor=signed_in_user(self.request))

    @extend_schema(
        summary="Rotate the signing secret",
        description=("The new secret signs every delivery from now on; the old one signs beside it for "
                     "WEBHOOK_SECRET_OVERLAP_HOURS (two `v1=` in X-Tracker-Signature), so that the receiver "
                     "can switch over without losing a delivery."),
        request=s.WebhookSecretRotationSerializer,
        responses=s.WebhookEndpointSerializer,
    )
    @action(detail=True, methods=["post"], url_path="rotate-secret", filter_backends=[], pagination_class=None)
    def rotate_secret(self, request: Request, pk: str | None = None) -> Response:
        endpoint = self.get_object()
        payload = s.WebhookSecretRotationSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        try:
            endpoint = webhooks.webhook_secret_rotate(endpoint=endpoint, secret=payload.validated_data["secret"],
                                                      actor=signed_in_user(request))
        except webhooks.EndpointRefused as refused:
            raise ValidationError({"secret": [str(refused)]}) from refused
        return Response(s.WebhookEndpointSerializer(endpoint).data)


@extend_schema_view(
    list=extend_schema(summary="Deliveries to your webhook endpoints, newest first"),
    retrieve=extend_schema(summary="A delivery: what was sent, each attempt's outcome"),
)
class WebhookDeliveryViewSet(PartnerViewSet, mixins.ListModelMixin, mixins.RetrieveModelMixin):
    serializer_class = s.WebhookDeliverySerializer
    filterset_class = WebhookDeliveryFilter
    pagination_class = DeliveryCursorPagination
    filter_backends = [FilterBackend]
    staff_permissions = {"read": ("tracker.view_webhookdelivery",),
                         "write": ("tracker.view_webhookdelivery", "tracker.change_webhookendpoint")}

    def get_queryset(self) -> QuerySet[WebhookDelivery]:
        viewer = self.viewer
        deliveries = WebhookDelivery.objects.select_related("outbox_event")
        return deliveries if viewer.is_staff else deliveries.filter(endpoint__organisation=viewer.organisation)

    @extend_schema(summary="Send a delivery again", request=None, responses={202: s.WebhookDeliverySerializer})
    @action(detail=True, methods=["post"], filter_backends=[], pagination_class=None)
    def redeliver(self, request: Request, pk: str | None = None) -> Response:
        delivery = self.get_object()
        try:
            delivery = webhooks.webhook_delivery_redeliver(delivery=delivery)
        except webhooks.EndpointRefused as refused:
            raise ValidationError(str(refused)) from refused
        enqueue_on_commit(deliver_webhook, delivery.pk)
        return Response(s.WebhookDeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)
