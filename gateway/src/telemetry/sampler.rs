//! Which traces are recorded: the SDK specification's samplers, chosen with the standard
//! `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG`
//! (<https://opentelemetry.io/docs/specs/otel/configuration/sdk-environment-variables/>).
//! The default, `parentbased_always_on`, records every request unless the client's
//! `traceparent` says its trace is not sampled.

/// A sampling decision per trace, made once when the request's span starts; the attempts'
/// spans follow it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sampler {
    /// A client's `traceparent` decides when there is one.
    parent_based: bool,
    root: Root,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Root {
    On,
    Off,
    /// `TraceIdRatioBased`: sampled when the trace id's low 63 bits fall under this bound, so
    /// every service sampling by the same ratio keeps the same traces.
    Ratio(u64),
}

impl Default for Sampler {
    fn default() -> Self {
        Sampler { parent_based: true, root: Root::On }
    }
}

impl Sampler {
    pub fn from_env(name: Option<&str>, arg: Option<&str>) -> Result<Sampler, String> {
        let ratio = || -> Result<Root, String> {
            let Some(arg) = arg else { return Ok(Root::On) };
            match arg.trim().parse::<f64>() {
                Ok(ratio) if (0.0..=1.0).contains(&ratio) => Ok(if ratio >= 1.0 {
                    Root::On
                } else {
                    Root::Ratio((ratio * (1u64 << 63) as f64) as u64)
                }),
                _ => Err(format!("OTEL_TRACES_SAMPLER_ARG: {arg:?} is not a ratio between 0 and 1")),
            }
        };
        let (parent_based, root) = match name.map(str::trim) {
            None | Some("parentbased_always_on") => (true, Root::On),
            Some("always_on") => (false, Root::On),
            Some("always_off") => (false, Root::Off),
            Some("traceidratio") => (false, ratio()?),
            Some("parentbased_always_off") => (true, Root::Off),
            Some("parentbased_traceidratio") => (true, ratio()?),
            Some(other) => {
                return Err(format!(
                    "OTEL_TRACES_SAMPLER {other:?} is not supported: use always_on, always_off, traceidratio \
                     or their parentbased_ forms"
                ));
            }
        };
        Ok(Sampler { parent_based, root })
    }

    /// Whether the trace `trace_id` is recorded; `parent` is the client's sampled flag.
    pub fn sampled(&self, parent: Option<bool>, trace_id: &[u8; 16]) -> bool {
        if self.parent_based
            && let Some(sampled) = parent
        {
            return sampled;
        }
        match self.root {
            Root::On => true,
            Root::Off => false,
            Root::Ratio(bound) => {
                let mut low = [0; 8];
                low.copy_from_slice(&trace_id[8..]);
                (u64::from_be_bytes(low) >> 1) < bound
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_follows_the_client_and_records_the_rest() {
        let sampler = Sampler::from_env(None, None).unwrap();
        assert_eq!(sampler, Sampler::default());
        assert!(sampler.sampled(None, &[0; 16]));
        assert!(!sampler.sampled(Some(false), &[0; 16]));
        let always = Sampler::from_env(Some("always_on"), None).unwrap();
        assert!(always.sampled(Some(false), &[0; 16]), "not parent-based");
        assert!(!Sampler::from_env(Some("parentbased_always_off"), None).unwrap().sampled(None, &[0; 16]));
    }

    #[test]
    fn a_ratio_keeps_that_share_of_trace_ids() {
        let sampler = Sampler::from_env(Some("traceidratio"), Some("0.25")).unwrap();
        let kept = (0u64..10_000)
            .filter(|n| {
                let mut id = [0; 16];
                // Spread over the whole range, as random ids are.
                id[8..].copy_from_slice(&n.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_be_bytes());
                sampler.sampled(None, &id)
            })
            .count();
        assert!((2_300..2_700).contains(&kept), "{kept} of 10,000 kept at 0.25");
        assert!(Sampler::from_env(Some("traceidratio"), Some("1.5")).is_err());
        assert!(Sampler::from_env(Some("jaeger_remote"), None).is_err());
    }
}
