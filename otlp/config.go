package otlp

import (
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/otlptranslator"
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/storage/remote/otlptranslator/prometheusremotewrite"

	"github.com/stratametrics/strata/internal/envconfig"
)

// Config is how OTLP metrics translate into series: the options of
// Prometheus' `otlp:` configuration block, under the same YAML names, so
// that a block copied from a prometheus.yml means the same here. In the
// environment they are STRATA_OTLP_<NAME>.
type Config struct {
	// TranslationStrategy: UnderscoreEscapingWithSuffixes (Prometheus'
	// default: names escaped to the classic character set, unit and type
	// suffixes added), UnderscoreEscapingWithoutSuffixes,
	// NoUTF8EscapingWithSuffixes or NoTranslation (UTF-8 names as sent).
	TranslationStrategy otlptranslator.TranslationStrategyOption `yaml:"translation_strategy" env:"TRANSLATION_STRATEGY" envDefault:"UnderscoreEscapingWithSuffixes"`
	// PromoteResourceAttributes become labels of every series of their
	// resource; the others go to target_info only.
	PromoteResourceAttributes []string `yaml:"promote_resource_attributes" env:"PROMOTE_RESOURCE_ATTRIBUTES"`
	// PromoteAllResourceAttributes promotes every resource attribute but
	// IgnoreResourceAttributes.
	PromoteAllResourceAttributes bool     `yaml:"promote_all_resource_attributes" env:"PROMOTE_ALL_RESOURCE_ATTRIBUTES"`
	IgnoreResourceAttributes     []string `yaml:"ignore_resource_attributes" env:"IGNORE_RESOURCE_ATTRIBUTES"`
	// KeepIdentifyingResourceAttributes keeps service.name,
	// service.namespace and service.instance.id in target_info too, besides
	// job and instance.
	KeepIdentifyingResourceAttributes bool `yaml:"keep_identifying_resource_attributes" env:"KEEP_IDENTIFYING_RESOURCE_ATTRIBUTES"`
	// ConvertHistogramsToNHCB stores classic (explicit-bucket) histograms
	// as native histograms with custom buckets.
	ConvertHistogramsToNHCB bool `yaml:"convert_histograms_to_nhcb" env:"CONVERT_HISTOGRAMS_TO_NHCB"`
	// PromoteScopeMetadata adds otel_scope_name, _version, _schema_url and
	// the scope's attributes as labels.
	PromoteScopeMetadata bool `yaml:"promote_scope_metadata" env:"PROMOTE_SCOPE_METADATA"`
	// LabelNameUnderscoreSanitization prefixes "key" to label names that
	// begin with a single "_" (when names are escaped), and
	// LabelNamePreserveMultipleUnderscores keeps runs of "_" as they are:
	// both on in Prometheus 3, whose default this is.
	LabelNameUnderscoreSanitization      bool `yaml:"label_name_underscore_sanitization" env:"LABEL_NAME_UNDERSCORE_SANITIZATION" envDefault:"true"`
	LabelNamePreserveMultipleUnderscores bool `yaml:"label_name_preserve_multiple_underscores" env:"LABEL_NAME_PRESERVE_MULTIPLE_UNDERSCORES" envDefault:"true"`
	// DisableTargetInfo stops target_info series (Prometheus' own
	// receiver always writes them).
	DisableTargetInfo bool `yaml:"disable_target_info" env:"DISABLE_TARGET_INFO"`
	// NativeDeltaIngestion stores delta sums and histograms as they come,
	// typed unknown, as Prometheus' otlp-native-delta-ingestion feature
	// does; off, they are refused metric by metric, as by Prometheus'
	// default. Converting deltas to cumulative, as Prometheus can, needs
	// every point of a series to pass one process, which stateless routers
	// do not offer: run the Collector's deltatocumulative processor in
	// front instead.
	NativeDeltaIngestion bool `yaml:"native_delta_ingestion" env:"NATIVE_DELTA_INGESTION"`
	// LookbackDelta is the query lookback that target_info samples are
	// spaced by, as in Prometheus (its --query.lookback-delta).
	LookbackDelta time.Duration `yaml:"lookback_delta" env:"LOOKBACK_DELTA" envDefault:"5m"`
}

// DefaultConfig is Prometheus' default translation.
func DefaultConfig() Config { return envconfig.Defaults[Config]() }

// Validate refuses options Prometheus refuses.
func (c Config) Validate() error {
	switch c.TranslationStrategy {
	case otlptranslator.UnderscoreEscapingWithSuffixes, otlptranslator.UnderscoreEscapingWithoutSuffixes,
		otlptranslator.NoUTF8EscapingWithSuffixes, otlptranslator.NoTranslation:
	default:
		return fmt.Errorf("otlp translation_strategy (STRATA_OTLP_TRANSLATION_STRATEGY) %q: want one of %s, %s, %s, %s", c.TranslationStrategy,
			otlptranslator.UnderscoreEscapingWithSuffixes, otlptranslator.UnderscoreEscapingWithoutSuffixes,
			otlptranslator.NoUTF8EscapingWithSuffixes, otlptranslator.NoTranslation)
	}
	if c.PromoteAllResourceAttributes && len(c.PromoteResourceAttributes) > 0 {
		return errors.New("otlp: promote_all_resource_attributes and promote_resource_attributes cannot both be set")
	}
	if !c.PromoteAllResourceAttributes && len(c.IgnoreResourceAttributes) > 0 {
		return errors.New("otlp: ignore_resource_attributes needs promote_all_resource_attributes")
	}
	if c.LookbackDelta <= 0 {
		return fmt.Errorf("otlp lookback_delta (STRATA_OTLP_LOOKBACK_DELTA) must be positive, got %s", c.LookbackDelta)
	}
	return nil
}

// Settings are a Config made ready for translation; build them once per
// configuration, not per request.
type Settings struct {
	s prometheusremotewrite.Settings
}

// Settings compiles c.
func (c Config) Settings() Settings {
	return Settings{s: prometheusremotewrite.Settings{
		AddMetricSuffixes: c.TranslationStrategy.ShouldAddSuffixes(),
		AllowUTF8:         !c.TranslationStrategy.ShouldEscape(),
		PromoteResourceAttributes: prometheusremotewrite.NewPromoteResourceAttributes(config.OTLPConfig{
			PromoteAllResourceAttributes: c.PromoteAllResourceAttributes,
			PromoteResourceAttributes:    c.PromoteResourceAttributes,
			IgnoreResourceAttributes:     c.IgnoreResourceAttributes,
		}),
		KeepIdentifyingResourceAttributes:    c.KeepIdentifyingResourceAttributes,
		ConvertHistogramsToNHCB:              c.ConvertHistogramsToNHCB,
		PromoteScopeMetadata:                 c.PromoteScopeMetadata,
		DisableTargetInfo:                    c.DisableTargetInfo,
		AllowDeltaTemporality:                c.NativeDeltaIngestion,
		LabelNameUnderscoreSanitization:      c.LabelNameUnderscoreSanitization,
		LabelNamePreserveMultipleUnderscores: c.LabelNamePreserveMultipleUnderscores,
		LookbackDelta:                        c.LookbackDelta,
	}}
}
