"""The read log's hash chain and the append-only audit tables.

The rows already in the read log are chained here, in id order, before the triggers go in: from then
on the database chains each new row after the last. The table is locked for the migration's
transaction, so that no row written meanwhile (by processes still running the code before this
migration) is left out of the chain. The hash is `cases.read_chain`'s, imported rather than copied:
it can never change, or every chain already written would break.
"""

import django.db.models.deletion
import pgtrigger.compiler
import pgtrigger.migrations
from django.conf import settings
from django.db import migrations, models

from cases import read_chain
from core.bulk import update_instances

CHUNK = 5000


def chain_existing_rows(apps, schema_editor):
    RecordAccess = apps.get_model("cases", "RecordAccess")
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("LOCK TABLE cases_recordaccess IN SHARE ROW EXCLUSIVE MODE")
    previous = None
    rows = RecordAccess.objects.order_by("pk").only("pk", *read_chain.CONTENT_FIELDS)
    last = 0
    while chunk := list(rows.filter(pk__gt=last)[:CHUNK]):
        read_chain.link(chunk, previous)
        update_instances(chunk, RecordAccess, ["prev_hash", "row_hash"])
        previous, last = chunk[-1].row_hash, chunk[-1].pk


class Migration(migrations.Migration):

    dependencies = [
        ('cases', '0007_match_key_child_index_from_constraint'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='recordaccess',
            name='prev_hash',
            field=models.CharField(default='', editable=False, max_length=64),
        ),
        migrations.AddField(
            model_name='recordaccess',
            name='row_hash',
            field=models.CharField(default='', editable=False, max_length=64),
        ),
        migrations.RunPython(chain_existing_rows, migrations.RunPython.noop, elidable=False),
        migrations.AlterField(
            model_name='historicalcase',
            name='history_user',
            field=models.ForeignKey(null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AlterField(
            model_name='historicalchild',
            name='history_user',
            field=models.ForeignKey(null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name='historicalcase',
            trigger=pgtrigger.compiler.Trigger(name='append_only', sql=pgtrigger.compiler.UpsertTriggerSql(func="RAISE EXCEPTION 'pgtrigger: Cannot update or delete rows from % table', TG_TABLE_NAME;", hash='d77c572197fd327405565d628ba44fb3cc63c482', operation='UPDATE OR DELETE', pgid='pgtrigger_append_only_f7681', table='cases_historicalcase', when='BEFORE')),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name='historicalcase',
            trigger=pgtrigger.compiler.Trigger(name='no_truncate', sql=pgtrigger.compiler.UpsertTriggerSql(func="RAISE EXCEPTION 'pgtrigger: Cannot truncate % table: it is append-only', TG_TABLE_NAME; RETURN NULL;", hash='d5e92bb576e5c9304ef5fdc3f58370f0cfc3eeb6', level='STATEMENT', operation='TRUNCATE', pgid='pgtrigger_no_truncate_2cc03', table='cases_historicalcase', when='BEFORE')),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name='historicalchild',
            trigger=pgtrigger.compiler.Trigger(name='append_only', sql=pgtrigger.compiler.UpsertTriggerSql(func="RAISE EXCEPTION 'pgtrigger: Cannot update or delete rows from % table', TG_TABLE_NAME;", hash='7dca5a40927244d4d0b4be6e2b26ac42038ce516', operation='UPDATE OR DELETE', pgid='pgtrigger_append_only_eb5c4', table='cases_historicalchild', when='BEFORE')),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name='historicalchild',
            trigger=pgtrigger.compiler.Trigger(name='no_truncate', sql=pgtrigger.compiler.UpsertTriggerSql(func="RAISE EXCEPTION 'pgtrigger: Cannot truncate % table: it is append-only', TG_TABLE_NAME; RETURN NULL;", hash='057470f81f35e8d0fddf4f5cf7305a4e2205fd54', level='STATEMENT', operation='TRUNCATE', pgid='pgtrigger_no_truncate_af10b', table='cases_historicalchild', when='BEFORE')),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name='recordaccess',
            trigger=pgtrigger.compiler.Trigger(name='append_only', sql=pgtrigger.compiler.UpsertTriggerSql(func="RAISE EXCEPTION 'pgtrigger: Cannot update or delete rows from % table', TG_TABLE_NAME;", hash='a882cd471bb4b0cc7d24e6cfa07a1546e0990811', operation='UPDATE OR DELETE', pgid='pgtrigger_append_only_921f9', table='cases_recordaccess', when='BEFORE')),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name='recordaccess',
            trigger=pgtrigger.compiler.Trigger(name='no_truncate', sql=pgtrigger.compiler.UpsertTriggerSql(func="RAISE EXCEPTION 'pgtrigger: Cannot truncate % table: it is append-only', TG_TABLE_NAME; RETURN NULL;", hash='572e91678bc4a6027cf1a9ffb822efc71d84c575', level='STATEMENT', operation='TRUNCATE', pgid='pgtrigger_no_truncate_675f0', table='cases_recordaccess', when='BEFORE')),
        ),
        pgtrigger.migrations.AddTrigger(
            model_name='recordaccess',
            trigger=pgtrigger.compiler.Trigger(name='read_chain', sql=pgtrigger.compiler.UpsertTriggerSql(declare='DECLARE previous varchar(64); accessed text;', func='\n            IF current_setting(\'transaction_isolation\') <> \'read committed\' THEN\n                RAISE EXCEPTION \'the read log is written in READ COMMITTED transactions only, not %\',\n                    current_setting(\'transaction_isolation\');\n            END IF;\n            PERFORM pg_advisory_xact_lock(32199616316075879);\n            NEW.id := nextval(pg_get_serial_sequence(\'cases_recordaccess\', \'id\'));\n            SELECT row_hash INTO previous FROM cases_recordaccess ORDER BY id DESC LIMIT 1;\n            NEW.prev_hash := COALESCE(previous, \'0000000000000000000000000000000000000000000000000000000000000000\');\n            accessed := to_char(NEW.accessed_at AT TIME ZONE \'UTC\', \'YYYY-MM-DD"T"HH24:MI:SS.US"Z"\');\n            NEW.row_hash := encode(sha256(convert_to(\n                NEW.prev_hash || E\'\\n\' || length(COALESCE(NEW.child_id::text, \'\')) || \':\' || COALESCE(NEW.child_id::text, \'\') || \'|\' || length(COALESCE(NEW.user_id::text, \'\')) || \':\' || COALESCE(NEW.user_id::text, \'\') || \'|\' || length(COALESCE(NEW.channel::text, \'\')) || \':\' || COALESCE(NEW.channel::text, \'\') || \'|\' || length(COALESCE(NEW.partner_id::text, \'\')) || \':\' || COALESCE(NEW.partner_id::text, \'\') || \'|\' || length(COALESCE(NEW.api_key_prefix::text, \'\')) || \':\' || COALESCE(NEW.api_key_prefix::text, \'\') || \'|\' || length(COALESCE(NEW.client::text, \'\')) || \':\' || COALESCE(NEW.client::text, \'\') || \'|\' || length(COALESCE(NEW.path::text, \'\')) || \':\' || COALESCE(NEW.path::text, \'\') || \'|\' || length(COALESCE(accessed::text, \'\')) || \':\' || COALESCE(accessed::text, \'\'), \'UTF8\')), \'hex\');\n            RETURN NEW;\n        ', hash='9acbf560b7cd08267312c93b8ec6aa8ff892e8a1', operation='INSERT', pgid='pgtrigger_read_chain_69117', table='cases_recordaccess', when='BEFORE')),
        ),
    ]
