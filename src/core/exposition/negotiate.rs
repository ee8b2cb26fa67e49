//! Which exposition format a scraper gets, from its `Accept` header: the
//! format of the media range with the highest `q`, the first listed on a
//! tie, as Prometheus lists its `scrape_protocols` in order with falling
//! q values. Ranges we do not serve are skipped; no match is text 0.0.4.
//!
//! ```
//! use reliability_core::core::exposition::negotiate::{negotiate, Format};
//! let prometheus = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;\
//!     encoding=delimited;q=0.7,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";
//! assert_eq!(negotiate(Some(prometheus)), Format::Protobuf);
//! assert_eq!(negotiate(None), Format::Text);
//! ```

/// An exposition format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text 0.0.4.
    Text,
    /// OpenMetrics 1.0 text.
    OpenMetrics,
    /// Prometheus protobuf, delimited `MetricFamily` messages (native histograms).
    Protobuf,
}

/// The format for an `Accept` header (`None`: no header).
pub fn negotiate(accept: Option<&str>) -> Format {
    let Some(accept) = accept else {
        return Format::Text;
    };
    let mut best: Option<(f64, Format)> = None;
    for range in accept.split(',').take(32) {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or("").to_ascii_lowercase();
        let (mut q, mut proto, mut encoding) = (1.0, None, None);
        for p in parts {
            let Some((k, v)) = p.split_once('=') else {
                continue;
            };
            let v = v.trim().trim_matches('"');
            match k.trim().to_ascii_lowercase().as_str() {
                "q" => {
                    q = v
                        .parse::<f64>()
                        .ok()
                        .filter(|q| (0.0..=1.0).contains(q))
                        .unwrap_or(0.0)
                }
                "proto" => proto = Some(v.to_string()),
                "encoding" => encoding = Some(v.to_ascii_lowercase()),
                _ => {}
            }
        }
        let format = match media.as_str() {
            "application/vnd.google.protobuf"
                if proto.as_deref() == Some("io.prometheus.client.MetricFamily")
                    && encoding.as_deref().is_none_or(|e| e == "delimited") =>
            {
                Format::Protobuf
            }
            "application/openmetrics-text" => Format::OpenMetrics,
            "text/plain" | "text/*" | "*/*" => Format::Text,
            _ => continue,
        };
        if q > 0.0 && best.is_none_or(|(bq, _)| q > bq) {
            best = Some((q, format));
        }
    }
    best.map_or(Format::Text, |(_, f)| f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_headers_pick_their_first_protocol() {
        // Prometheus 2.42 with native histograms enabled.
        let p242 = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.7,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";
        assert_eq!(negotiate(Some(p242)), Format::Protobuf);
        // Prometheus 2.x default (no native histograms).
        let text = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(negotiate(Some(text)), Format::OpenMetrics);
        // scrape_protocols: [PrometheusText0.0.4, PrometheusProto]
        let ordered = "text/plain;version=0.0.4;q=0.5,application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.4";
        assert_eq!(negotiate(Some(ordered)), Format::Text);
        // Equal q: the first listed.
        let tie = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited,text/plain";
        assert_eq!(negotiate(Some(tie)), Format::Protobuf);
    }

    #[test]
    fn what_we_do_not_serve_falls_back_to_text() {
        for h in [
            "",
            "application/json",
            "application/vnd.google.protobuf",
            "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=text",
            "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;q=0",
            "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;q=nonsense",
            ";;;,,,=",
        ] {
            assert_eq!(negotiate(Some(h)), Format::Text, "{h}");
        }
        assert_eq!(negotiate(None), Format::Text);
    }
}
