"""The index bundle format: the one contract between the indexer and the service (torch-free).

Neither side owns it. ``bundle.layout`` names every file, table and ONNX input/output;
``bundle.reader`` is the half the service uses (verify, read items, memory-map clips);
``bundle.writer`` is the half the indexer uses (stage, seal, publish, collect garbage).
Adding a file or a manifest field is a change here, with a ``SCHEMA_VERSION`` bump.
"""

from bundle.layout import (
    CLIPS_DIR,
    CLIPS_FEATURES,
    CLIPS_OFFSETS,
    CURRENT,
    INDEX,
    ITEMS,
    MANIFEST,
    MOMENT_HEAD,
    MOMENT_HEAD_INPUTS,
    MOMENT_HEAD_OUTPUTS,
    REQUIRED_FILES,
    SCHEMA_VERSION,
    TEXT_ENCODER,
    TEXT_ENCODER_INPUTS,
    TEXT_ENCODER_OUTPUT,
    TOKENIZER,
    Item,
)
from bundle.reader import (
    ClipStore,
    ItemsDB,
    list_collections,
    list_versions,
    read_current,
    read_manifest,
    sha256_file,
    verify,
)
from bundle.writer import (
    build_alive,
    collect_garbage,
    new_version_id,
    publish,
    remove_abandoned_staging,
    set_current,
    staging_dir,
    write_clips,
    write_items,
)

__all__ = [
    "CLIPS_DIR",
    "CLIPS_FEATURES",
    "CLIPS_OFFSETS",
    "CURRENT",
    "INDEX",
    "ITEMS",
    "MANIFEST",
    "MOMENT_HEAD",
    "MOMENT_HEAD_INPUTS",
    "MOMENT_HEAD_OUTPUTS",
    "REQUIRED_FILES",
    "SCHEMA_VERSION",
    "TEXT_ENCODER",
    "TEXT_ENCODER_INPUTS",
    "TEXT_ENCODER_OUTPUT",
    "TOKENIZER",
    "ClipStore",
    "Item",
    "ItemsDB",
    "build_alive",
    "collect_garbage",
    "list_collections",
    "list_versions",
    "new_version_id",
    "publish",
    "read_current",
    "read_manifest",
    "remove_abandoned_staging",
    "set_current",
    "sha256_file",
    "staging_dir",
    "verify",
    "write_clips",
    "write_items",
]
