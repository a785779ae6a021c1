"""The run's config: every key with its default and allowed values (`schema`), read from JSON
(`loading`)."""

from srgan.config.loading import (
    RENAMED_KEYS,
    config_to_dict,
    load_config,
    parse_override,
    save_config,
    upgrade_keys,
    with_defaults,
)
from srgan.config.schema import (
    Config,
    ConfigError,
    DataConfig,
    GanConfig,
    LrPhase,
    ModelConfig,
    PretrainConfig,
    RuntimeConfig,
    check_config,
)

__all__ = [
    "RENAMED_KEYS",
    "Config",
    "ConfigError",
    "DataConfig",
    "GanConfig",
    "LrPhase",
    "ModelConfig",
    "PretrainConfig",
    "RuntimeConfig",
    "config_to_dict",
    "load_config",
    "parse_override",
    "save_config",
    "upgrade_keys",
    "with_defaults",
    "check_config",
]
