"""The migration history: every name resolves to one migration, and databases migrated
before a migration was renamed keep working."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.recorder import MigrationRecorder

# Names applied by databases migrated before the renames, and what replaced each.
RENAMED = {
    "0002_upload": "0003_upload",
    "0003_stream_indexes_without_duplicates": "0004_stream_indexes_without_duplicates",
    "0004_broadcast_rows_cheaper": "0005_broadcast_rows_cheaper",
}


def test_every_migration_number_of_an_app_names_one_migration() -> None:
    loader = MigrationLoader(None, ignore_no_migrations=True)
    for app in ("messaging", "notifications"):
        names = [name for app_label, name in loader.disk_migrations if app_label == app]
        numbers = [name.split("_", 1)[0] for name in names]
        assert len(numbers) == len(set(numbers)), f"{app} has two migrations with one number: {names}"


def test_migrate_messaging_0002_is_not_ambiguous() -> None:
    loader = MigrationLoader(None, ignore_no_migrations=True)
    migration = loader.get_migration_by_prefix("messaging", "0002")
    assert migration.name == "0002_stream_priorities_and_conversation_items"


@pytest.mark.django_db(transaction=True)
def test_a_database_migrated_under_the_old_names_migrates_forward_without_changes() -> None:
    recorder = MigrationRecorder(connection)
    # The database as a server migrated before the renames left it: the old names applied,
    # the new ones unknown.
    recorder.migration_qs.filter(app="messaging", name__in=RENAMED.values()).delete()
    for old_name in RENAMED:
        recorder.record_applied("messaging", old_name)

    executor = MigrationExecutor(connection)
    targets = executor.loader.graph.leaf_nodes()
    assert executor.migration_plan(targets) == []  # nothing to run: the tables are there

    call_command("migrate", verbosity=0)
    applied = set(recorder.applied_migrations())
    for new_name in RENAMED.values():
        assert ("messaging", new_name) in applied
    assert MigrationExecutor(connection).migration_plan(targets) == []


@pytest.mark.django_db
def test_the_models_match_the_migrations() -> None:
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)
