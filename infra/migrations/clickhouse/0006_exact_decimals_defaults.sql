-- Exact decimals of rows stored before 0005, better than 0005's defaults:
--   events: from their own text (prop_values: a numeric string as sent, a JSON number as JavaScript
--     prints it, its shortest round-trip form) when it is a plain decimal with at most 26 integer and 12
--     fractional digits; otherwise from the Float64.
--   Float64 -> Decimal(38, 12) without 0005's toDecimal128(Float64) (it scales by 10^12 in floating point:
--     37037036703702 became 37037036703702.001779736576): integer part through Int64 (exact), fraction
--     rounded to 12 digits; beyond 9e18 (no usage quantity) the plain conversion.
-- Recomputing rollups from events (services/aggregator/README.md "Exact quantities") then gives the same
-- sums as if the rows had been written with prop_decimal_values. Runs on 18.16 and a current LTS.
ALTER TABLE {db}.events
    MODIFY COLUMN prop_decimal_values Array(String)
        DEFAULT arrayMap((t, x, isn) -> if(isn = 1, if(match(t, '^-?[0-9]{1,26}([.][0-9]{1,12})?$'), t,
                 toString(if(abs(x) < 9e18, toDecimal128(toInt64(trunc(x)), 12) + toDecimal128(toInt64(round((x - trunc(x)) * 1e12)), 12) / 1000000000000,
                 toDecimal128(if(abs(x) < 1e26, x, 0), 12)))), '0'), prop_values, prop_number_values, prop_is_number);

ALTER TABLE {db}.events_by_offset
    MODIFY COLUMN prop_decimal_values Array(String)
        DEFAULT arrayMap((t, x, isn) -> if(isn = 1, if(match(t, '^-?[0-9]{1,26}([.][0-9]{1,12})?$'), t,
                 toString(if(abs(x) < 9e18, toDecimal128(toInt64(trunc(x)), 12) + toDecimal128(toInt64(round((x - trunc(x)) * 1e12)), 12) / 1000000000000,
                 toDecimal128(if(abs(x) < 1e26, x, 0), 12)))), '0'), prop_values, prop_number_values, prop_is_number);

ALTER TABLE {db}.metric_usage
    MODIFY COLUMN sum_decimal Decimal(38, 12)
        DEFAULT if(abs(sum_value) < 9e18, toDecimal128(toInt64(trunc(sum_value)), 12) + toDecimal128(toInt64(round((sum_value - trunc(sum_value)) * 1e12)), 12) / 1000000000000,
                 toDecimal128(if(abs(sum_value) < 1e26, sum_value, 0), 12)),
    MODIFY COLUMN max_decimal Decimal(38, 12)
        DEFAULT if(abs(max_value) < 9e18, toDecimal128(toInt64(trunc(max_value)), 12) + toDecimal128(toInt64(round((max_value - trunc(max_value)) * 1e12)), 12) / 1000000000000,
                 toDecimal128(if(abs(max_value) < 1e26, max_value, 0), 12));
