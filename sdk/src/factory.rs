//! Type erasure over [`Mode`]: how the host holds many modes in one registry.

use std::marker::PhantomData;
use std::sync::Arc;

use axum::{Extension, Router};

use crate::{ConfigError, Mode, ModeError, TabContext};

/// A mode with its types erased: parses a config section and builds a tab's router.
pub trait ModeFactory: Send + Sync {
    /// The mode's name ([`Mode::NAME`]).
    fn name(&self) -> &str;

    /// Parses and validates a config section without building anything.
    fn check(&self, section: toml::Value) -> Result<(), ConfigError>;

    /// Parses, validates and builds one tab; returns the router to serve.
    ///
    /// The instance is kept alive by the router and dropped with it.
    fn build(&self, section: toml::Value, ctx: TabContext) -> Result<Router, ModeError>;
}

/// The [`ModeFactory`] of the mode `M`.
pub struct DynMode<M>(PhantomData<fn() -> M>);

impl<M: Mode> DynMode<M> {
    /// The factory of `M`.
    pub fn new() -> Self {
        Self(PhantomData)
    }

    /// The factory of `M`, boxed for a registry.
    pub fn boxed() -> Box<dyn ModeFactory> {
        Box::new(Self::new())
    }
}

impl<M: Mode> Default for DynMode<M> {
    fn default() -> Self {
        Self::new()
    }
}

/// Parses a mode's config section and validates it.
pub fn parse_config<M: Mode>(section: toml::Value) -> Result<M::Config, ConfigError> {
    let config: M::Config = serde_path_to_error::deserialize(section).map_err(|err| {
        let key = err
            .path()
            .iter()
            .filter_map(|segment| match segment {
                serde_path_to_error::Segment::Map { key } => Some(key.clone()),
                serde_path_to_error::Segment::Seq { index } => Some(index.to_string()),
                serde_path_to_error::Segment::Enum { variant } => Some(variant.clone()),
                serde_path_to_error::Segment::Unknown => None,
            })
            .collect();
        ConfigError {
            key,
            message: err.into_inner().to_string(),
        }
    })?;
    M::validate(&config)?;
    Ok(config)
}

impl<M: Mode> ModeFactory for DynMode<M> {
    fn name(&self) -> &str {
        M::NAME
    }

    fn check(&self, section: toml::Value) -> Result<(), ConfigError> {
        parse_config::<M>(section).map(drop)
    }

    fn build(&self, section: toml::Value, ctx: TabContext) -> Result<Router, ModeError> {
        let config = parse_config::<M>(section)?;
        let instance = Arc::new(M::build(config, ctx)?);
        Ok(instance.router().layer(Extension(instance)))
    }
}
