//! Host bindings generated from `wit/strom-plugin.wit`, one module per world. The shared
//! `types` and `host` interfaces are generated once (in `partitioner`) and reused.

pub mod partitioner {
    wasmtime::component::bindgen!({
        world: "partitioner-plugin",
        path: "../../wit",
        // Calls into plugins are futures: a guest runs on the caller's task and yields to
        // the executor at every epoch tick, and WASI's blocking operations are async.
        exports: { default: async },
    });
}

pub mod batch_partitioner {
    wasmtime::component::bindgen!({
        world: "batch-partitioner-plugin",
        path: "../../wit",
        exports: { default: async },
        with: {
            "strom:plugin/types": crate::bindings::partitioner::strom::plugin::types,
            "strom:plugin/host": crate::bindings::partitioner::strom::plugin::host,
        },
    });
}

pub mod batch_interceptor {
    wasmtime::component::bindgen!({
        world: "batch-interceptor-plugin",
        path: "../../wit",
        exports: { default: async },
        with: {
            "strom:plugin/types": crate::bindings::partitioner::strom::plugin::types,
            "strom:plugin/host": crate::bindings::partitioner::strom::plugin::host,
        },
    });
}

pub mod interceptor {
    wasmtime::component::bindgen!({
        world: "interceptor-plugin",
        path: "../../wit",
        exports: { default: async },
        with: {
            "strom:plugin/types": crate::bindings::partitioner::strom::plugin::types,
            "strom:plugin/host": crate::bindings::partitioner::strom::plugin::host,
        },
    });
}

pub mod sasl {
    wasmtime::component::bindgen!({
        world: "sasl-plugin",
        path: "../../wit",
        exports: { default: async },
        with: {
            "strom:plugin/host": crate::bindings::partitioner::strom::plugin::host,
        },
    });
}

pub use batch_interceptor::exports::strom::plugin::batch_interceptor::{BatchVerdict, EncodedRecords};
pub use interceptor::exports::strom::plugin::record_interceptor::Verdict;
pub use partitioner::strom::plugin::host::Level;
pub use partitioner::strom::plugin::types::{BatchContext, Header, KafkaRecord, PluginError};
pub use sasl::exports::strom::plugin::sasl_mechanism::{Outcome as SaslOutcome, Principal as SaslPrincipal};
pub use sasl::strom::plugin::credentials::ScramCredential;
