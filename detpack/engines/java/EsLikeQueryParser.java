/*
 * detpack: a query_string parser that behaves like Elasticsearch's for the queries pySigma emits.
 *
 * Written for detpack from Elasticsearch's documented query_string behaviour (links in
 * detpack/engines/lucene.py). Elasticsearch's own query_string parser subclasses Lucene's classic
 * QueryParser; so does this one, overriding the hooks the classic grammar calls:
 *
 *  - getFieldQuery: `_exists_:field`; `field:>=N`, `>`, `<`, `<=` as one-sided ranges; term and phrase
 *    queries built per field type (keyword exact and case-sensitive, text analysed with the standard
 *    analyzer, numbers, ip addresses and CIDR blocks, booleans, dates);
 *  - getRangeQuery: numeric, ip, date and string ranges, `*` as an open end;
 *  - getWildcardQuery / getPrefixQuery / getRegexpQuery: `field:*` is an exists query; patterns on keyword
 *    (whole value) and text (each token, pattern lower-cased except for regular expressions); the
 *    field types Elasticsearch rejects are rejected with its messages;
 *  - a sub-key of a flattened field (`labels.app`) takes terms, prefixes and two-sided ranges on the keyed
 *    terms "app\0value"; wildcards run unprefixed over every key's keyed terms, as Elasticsearch's do;
 *  - getBooleanQuery: a group of only negative clauses gets a match-all clause, so `NOT a:b` and
 *    `x AND (NOT a:b)` match what they say;
 *  - a field that is not in the mapping is an error (UnknownFieldException), where Elasticsearch would
 *    match nothing; unfielded terms search every field leniently, like the default field `*`.
 */
package detpack.lucene;

import detpack.lucene.EsMapping.Field;
import detpack.lucene.EsMapping.Kind;
import detpack.lucene.EsMapping.QueryException;
import detpack.lucene.EsMapping.UnknownFieldException;
import java.math.BigDecimal;
import java.math.RoundingMode;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.time.LocalDateTime;
import java.time.YearMonth;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.lucene.analysis.Analyzer;
import org.apache.lucene.document.DoublePoint;
import org.apache.lucene.document.FloatPoint;
import org.apache.lucene.document.InetAddressPoint;
import org.apache.lucene.document.LongPoint;
import org.apache.lucene.index.Term;
import org.apache.lucene.queryparser.classic.ParseException;
import org.apache.lucene.queryparser.classic.QueryParser;
import org.apache.lucene.search.BooleanClause;
import org.apache.lucene.search.BooleanQuery;
import org.apache.lucene.search.DisjunctionMaxQuery;
import org.apache.lucene.search.MatchAllDocsQuery;
import org.apache.lucene.search.MatchNoDocsQuery;
import org.apache.lucene.search.PrefixQuery;
import org.apache.lucene.search.Query;
import org.apache.lucene.search.RegexpQuery;
import org.apache.lucene.search.TermQuery;
import org.apache.lucene.search.TermRangeQuery;
import org.apache.lucene.search.WildcardQuery;
import org.apache.lucene.util.BytesRef;
import org.apache.lucene.util.automaton.RegExp;

public final class EsLikeQueryParser extends QueryParser {

    static final String EXISTS_FIELD = "_exists_";
    /** Elasticsearch's default field: every field of the mapping, queried leniently. */
    static final String ALL_FIELDS = "*";

    private final EsMapping mapping;

    public EsLikeQueryParser(EsMapping mapping, Analyzer analyzer) {
        super(ALL_FIELDS, analyzer);
        this.mapping = mapping;
        setAllowLeadingWildcard(true);
        setDefaultOperator(QueryParser.OR_OPERATOR);
        // Elasticsearch's query_string splits on operators only, not on whitespace (the analyzer sees
        // "new york city" whole).
        setSplitOnWhitespace(false);
        setAutoGeneratePhraseQueries(false);
        setMaxDeterminizedStates(10000);
    }

    // ---------------------------------------------------------------- boolean groups

    /** A boolean query whose clauses are all MUST_NOT gets a match-all clause (Elasticsearch does this). */
    public static Query fixNegative(Query query) {
        if (!(query instanceof BooleanQuery)) {
            return query;
        }
        BooleanQuery bq = (BooleanQuery) query;
        if (bq.clauses().isEmpty()) {
            return query;
        }
        for (BooleanClause clause : bq.clauses()) {
            if (clause.getOccur() != BooleanClause.Occur.MUST_NOT) {
                return query;
            }
        }
        BooleanQuery.Builder builder = new BooleanQuery.Builder();
        for (BooleanClause clause : bq.clauses()) {
            builder.add(clause);
        }
        builder.add(new MatchAllDocsQuery(), BooleanClause.Occur.FILTER);
        return builder.build();
    }

    @Override
    protected Query getBooleanQuery(List<BooleanClause> clauses) throws ParseException {
        Query q = super.getBooleanQuery(clauses);
        return q == null ? null : fixNegative(q);
    }

    // ---------------------------------------------------------------- field resolution

    private interface Builder {
        Query build(Field field) throws ParseException;
    }

    /**
     * Builds the query for one field, or for every field a pattern (or the default field "*") expands to.
     * Expansion is lenient, as Elasticsearch's is for the default field: fields whose type rejects the
     * value are left out.
     */
    private Query perField(String fieldName, Builder builder) throws ParseException {
        if (fieldName.indexOf('*') < 0) {
            return builder.build(mapping.resolveForQuery(fieldName));
        }
        List<Query> queries = new ArrayList<>();
        for (Field f : mapping.expand(fieldName)) {
            try {
                Query q = builder.build(f);
                if (q != null) {
                    queries.add(q);
                }
            } catch (EsMapping.EsException | ParseException e) {
                // lenient: a field that cannot take this value does not match it
            }
        }
        if (queries.isEmpty()) {
            if (!ALL_FIELDS.equals(fieldName) && !mapping.anyFieldMatches(fieldName)) {
                throw new UnknownFieldException(fieldName, "no field in the mapping matches [" + fieldName + "]");
            }
            return new MatchNoDocsQuery("no field of [" + fieldName + "] accepts the value");
        }
        return queries.size() == 1 ? queries.get(0) : new DisjunctionMaxQuery(queries, 0.0f);
    }

    private static QueryException unsupported(String what, String allowed, Field f) {
        return new QueryException("Can only use " + what + " queries on " + allowed + " fields - not on ["
            + f.name + "] which is of type [" + f.esType() + "]");
    }

    private static UnknownFieldException objectField(Field f) {
        return new UnknownFieldException(f.name, "field [" + f.name + "] is an object, not a leaf field: "
            + "Elasticsearch matches nothing for a value query on it (use _exists_:" + f.name + ")");
    }

    private Query existsQuery(String fieldName) {
        if (fieldName.indexOf('*') >= 0) {
            if (!mapping.anyFieldMatches(fieldName)) {
                throw new UnknownFieldException(fieldName, "no field in the mapping matches [" + fieldName + "]");
            }
            return new WildcardQuery(new Term(EsIndex.FIELD_NAMES, fieldName));
        }
        Field f = mapping.resolveForQuery(fieldName);
        return new TermQuery(new Term(EsIndex.FIELD_NAMES, f.name));
    }

    // ---------------------------------------------------------------- terms and phrases

    @Override
    protected Query getFieldQuery(String field, String queryText, boolean quoted) throws ParseException {
        if (EXISTS_FIELD.equals(field)) {
            return existsQuery(queryText);
        }
        if (!quoted && queryText.length() > 1) {
            // Elasticsearch: `age:>10`, `age:>=10`, `age:<10`, `age:<=10` are ranges with one open end.
            char first = queryText.charAt(0);
            boolean orEqual = queryText.length() > 2 && queryText.charAt(1) == '=';
            String bound = queryText.substring(orEqual ? 2 : 1);
            if (first == '>') {
                return getRangeQuery(field, bound, null, orEqual, true);
            }
            if (first == '<') {
                return getRangeQuery(field, null, bound, true, orEqual);
            }
        }
        return perField(field, f -> termQuery(f, queryText, quoted, 0));
    }

    @Override
    protected Query getFieldQuery(String field, String queryText, int slop) throws ParseException {
        if (EXISTS_FIELD.equals(field)) {
            return existsQuery(queryText);
        }
        return perField(field, f -> termQuery(f, queryText, true, slop));
    }

    private Query termQuery(Field f, String text, boolean quoted, int slop) throws ParseException {
        switch (f.kind) {
            case KEYWORD:
            case FLATTENED:
                if (f.isKeyedFlattened()) {
                    return new TermQuery(new Term(f.keyedField(), f.keyed(text)));
                }
                return new TermQuery(new Term(f.name, text));
            case TEXT:
                // match / match_phrase with the field's analyzer; no tokens: no clause (zero_terms_query none)
                return quoted ? createPhraseQuery(f.name, text, slop)
                              : createBooleanQuery(f.name, text, BooleanClause.Occur.SHOULD);
            case LONG: {
                BigDecimal v = parseNumber(f, text);
                if (v.stripTrailingZeros().scale() > 0) {
                    return new MatchNoDocsQuery("[" + text + "] has a decimal part");
                }
                return LongPoint.newExactQuery(f.name, checkedLong(f, v, text));
            }
            case FLOAT:
                return FloatPoint.newExactQuery(f.name, parseNumber(f, text).floatValue());
            case DOUBLE:
                return DoublePoint.newExactQuery(f.name, parseNumber(f, text).doubleValue());
            case IP: {
                int slash = text.lastIndexOf('/');
                if (slash >= 0) {
                    InetAddress address = parseIp(text.substring(0, slash));
                    int bits = address.getAddress().length * 8;
                    int prefix;
                    try {
                        prefix = Integer.parseInt(text.substring(slash + 1));
                    } catch (NumberFormatException e) {
                        throw new QueryException("Expected [ip/prefix] but was [" + text + "]");
                    }
                    if (prefix < 0 || prefix > bits) {
                        throw new QueryException("Illegal prefix length [" + prefix + "] in [" + text + "]");
                    }
                    return InetAddressPoint.newPrefixQuery(f.name, address, prefix);
                }
                return InetAddressPoint.newExactQuery(f.name, parseIp(text));
            }
            case BOOLEAN:
                return new TermQuery(new Term(f.name, parseBoolean(text)));
            case DATE: {
                long[] range = parseDate(text);
                return LongPoint.newRangeQuery(f.name, range[0], range[1]);
            }
            case OBJECT:
                throw objectField(f);
            default:
                throw new QueryException("Field [" + f.name + "] of type [" + f.esType() + "] does not support "
                    + "term queries");
        }
    }

    // ---------------------------------------------------------------- ranges

    @Override
    protected Query getRangeQuery(String field, String part1, String part2, boolean startInclusive,
                                  boolean endInclusive) throws ParseException {
        String lower = "*".equals(part1) ? null : part1;
        String upper = "*".equals(part2) ? null : part2;
        if (EXISTS_FIELD.equals(field)) {
            throw new QueryException("_exists_ takes a field name, not a range");
        }
        return perField(field, f -> rangeQuery(f, lower, upper, startInclusive, endInclusive));
    }

    private Query rangeQuery(Field f, String lower, String upper, boolean incLower, boolean incUpper) {
        switch (f.kind) {
            case KEYWORD:
            case FLATTENED:
                if (f.isKeyedFlattened()) {
                    // an open end would run into the next key's values, so Elasticsearch refuses it
                    if (lower == null || upper == null) {
                        throw new QueryException("[range] queries on keyed [flattened] fields must include both an "
                            + "upper and a lower bound.");
                    }
                    return TermRangeQuery.newStringRange(f.keyedField(), f.keyed(lower), f.keyed(upper), incLower,
                        incUpper);
                }
                return TermRangeQuery.newStringRange(f.name, lower, upper, incLower, incUpper);
            case TEXT: {
                BytesRef lo = lower == null ? null : getAnalyzer().normalize(f.name, lower);
                BytesRef hi = upper == null ? null : getAnalyzer().normalize(f.name, upper);
                return new TermRangeQuery(f.name, lo, hi, incLower, incUpper);
            }
            case BOOLEAN: {
                String lo = lower == null ? null : parseBoolean(lower);
                String hi = upper == null ? null : parseBoolean(upper);
                return TermRangeQuery.newStringRange(f.name, lo, hi, incLower, incUpper);
            }
            case LONG: {
                long lo = Long.MIN_VALUE;
                long hi = Long.MAX_VALUE;
                if (lower != null) {
                    BigDecimal v = parseNumber(f, lower);
                    BigDecimal r = v.setScale(0, RoundingMode.CEILING);
                    if (r.compareTo(v) == 0 && !incLower) {
                        r = r.add(BigDecimal.ONE);
                    }
                    lo = clampLong(r);
                }
                if (upper != null) {
                    BigDecimal v = parseNumber(f, upper);
                    BigDecimal r = v.setScale(0, RoundingMode.FLOOR);
                    if (r.compareTo(v) == 0 && !incUpper) {
                        r = r.subtract(BigDecimal.ONE);
                    }
                    hi = clampLong(r);
                }
                return lo > hi ? new MatchNoDocsQuery("empty range") : LongPoint.newRangeQuery(f.name, lo, hi);
            }
            case FLOAT: {
                float lo = Float.NEGATIVE_INFINITY;
                float hi = Float.POSITIVE_INFINITY;
                if (lower != null) {
                    lo = parseNumber(f, lower).floatValue();
                    lo = incLower ? lo : FloatPoint.nextUp(lo);
                }
                if (upper != null) {
                    hi = parseNumber(f, upper).floatValue();
                    hi = incUpper ? hi : FloatPoint.nextDown(hi);
                }
                return FloatPoint.newRangeQuery(f.name, lo, hi);
            }
            case DOUBLE: {
                double lo = Double.NEGATIVE_INFINITY;
                double hi = Double.POSITIVE_INFINITY;
                if (lower != null) {
                    lo = parseNumber(f, lower).doubleValue();
                    lo = incLower ? lo : DoublePoint.nextUp(lo);
                }
                if (upper != null) {
                    hi = parseNumber(f, upper).doubleValue();
                    hi = incUpper ? hi : DoublePoint.nextDown(hi);
                }
                return DoublePoint.newRangeQuery(f.name, lo, hi);
            }
            case IP: {
                InetAddress lo = InetAddressPoint.MIN_VALUE;
                InetAddress hi = InetAddressPoint.MAX_VALUE;
                try {
                    if (lower != null) {
                        lo = parseIp(lower);
                        lo = incLower ? lo : InetAddressPoint.nextUp(lo);
                    }
                    if (upper != null) {
                        hi = parseIp(upper);
                        hi = incUpper ? hi : InetAddressPoint.nextDown(hi);
                    }
                } catch (ArithmeticException e) {
                    return new MatchNoDocsQuery("empty range");
                }
                return InetAddressPoint.newRangeQuery(f.name, lo, hi);
            }
            case DATE: {
                long lo = Long.MIN_VALUE;
                long hi = Long.MAX_VALUE;
                if (lower != null) {
                    long[] r = parseDate(lower);
                    lo = incLower ? r[0] : r[1] + 1;
                }
                if (upper != null) {
                    long[] r = parseDate(upper);
                    hi = incUpper ? r[1] : r[0] - 1;
                }
                return lo > hi ? new MatchNoDocsQuery("empty range") : LongPoint.newRangeQuery(f.name, lo, hi);
            }
            case OBJECT:
                throw objectField(f);
            default:
                throw new QueryException("Field [" + f.name + "] of type [" + f.esType() + "] does not support "
                    + "range queries");
        }
    }

    // ---------------------------------------------------------------- wildcards, prefixes, regexps

    @Override
    protected Query getWildcardQuery(String field, String termStr) throws ParseException {
        if ("*".equals(termStr)) {
            // Elasticsearch rewrites a lone `*` to an exists query (`*:*` matches every document)
            return ALL_FIELDS.equals(field) ? new MatchAllDocsQuery() : existsQuery(field);
        }
        if (EXISTS_FIELD.equals(field)) {
            throw new QueryException("_exists_ takes a field name, not a pattern");
        }
        return perField(field, f -> {
            if (f.isKeyedFlattened()) {
                // Elasticsearch's query_string sends the pattern, unprefixed by the key, to the flattened field's
                // keyed terms ("key\0value" of every key): `labels.a:*x*` matches "x" under any key, and a
                // pattern that does not start with * or ? never matches (elastic/elasticsearch#138427). The
                // wildcard query of the Query DSL rejects it instead.
                return super.getWildcardQuery(f.keyedField(), termStr);
            }
            switch (f.kind) {
                case KEYWORD:
                case FLATTENED:
                case TEXT:
                    // normalised with the field's analyzer: identity for keyword, lower-case for text
                    return super.getWildcardQuery(f.name, termStr);
                case OBJECT:
                    throw objectField(f);
                default:
                    throw unsupported("wildcard", "keyword, text and wildcard", f);
            }
        });
    }

    @Override
    protected Query getPrefixQuery(String field, String termStr) throws ParseException {
        if (EXISTS_FIELD.equals(field)) {
            throw new QueryException("_exists_ takes a field name, not a pattern");
        }
        return perField(field, f -> {
            if (f.isKeyedFlattened()) {
                return new PrefixQuery(new Term(f.keyedField(), f.keyed(termStr)));
            }
            switch (f.kind) {
                case KEYWORD:
                case FLATTENED:
                case TEXT:
                    return super.getPrefixQuery(f.name, termStr);
                case OBJECT:
                    throw objectField(f);
                default:
                    throw unsupported("prefix", "keyword, text and wildcard", f);
            }
        });
    }

    @Override
    protected Query getRegexpQuery(String field, String termStr) throws ParseException {
        if (EXISTS_FIELD.equals(field)) {
            throw new QueryException("_exists_ takes a field name, not a regular expression");
        }
        return perField(field, f -> {
            if (f.isKeyedFlattened()) {
                throw new QueryException("[regexp] queries are not currently supported on keyed [flattened] fields.");
            }
            switch (f.kind) {
                case KEYWORD:
                case FLATTENED:
                case TEXT:
                    // not normalised: on a text field the expression runs against the lower-cased tokens
                    try {
                        return new RegexpQuery(new Term(f.name, termStr), RegExp.ALL, getMaxDeterminizedStates());
                    } catch (IllegalArgumentException e) {
                        throw new QueryException("invalid regular expression [" + termStr + "]: " + e.getMessage());
                    }
                case OBJECT:
                    throw objectField(f);
                default:
                    throw unsupported("regexp", "keyword and text", f);
            }
        });
    }

    @Override
    protected Query getFuzzyQuery(String field, String termStr, float minSimilarity) throws ParseException {
        return perField(field, f -> {
            if (f.isKeyedFlattened()) {
                throw new QueryException("[fuzzy] queries are not currently supported on keyed [flattened] fields.");
            }
            switch (f.kind) {
                case KEYWORD:
                case FLATTENED:
                case TEXT:
                    return super.getFuzzyQuery(f.name, termStr, minSimilarity);
                case OBJECT:
                    throw objectField(f);
                default:
                    throw unsupported("fuzzy", "keyword and text", f);
            }
        });
    }

    // ---------------------------------------------------------------- values

    private static BigDecimal parseNumber(Field f, String text) {
        try {
            return new BigDecimal(text.trim());
        } catch (NumberFormatException e) {
            throw new QueryException("failed to create query: For input string: \"" + text + "\" (field [" + f.name
                + "] is of type [" + f.esType() + "])");
        }
    }

    private static long checkedLong(Field f, BigDecimal v, String text) {
        BigDecimal min;
        BigDecimal max;
        switch (f.type) {
            case "byte":
                min = BigDecimal.valueOf(Byte.MIN_VALUE);
                max = BigDecimal.valueOf(Byte.MAX_VALUE);
                break;
            case "short":
                min = BigDecimal.valueOf(Short.MIN_VALUE);
                max = BigDecimal.valueOf(Short.MAX_VALUE);
                break;
            case "integer":
                min = BigDecimal.valueOf(Integer.MIN_VALUE);
                max = BigDecimal.valueOf(Integer.MAX_VALUE);
                break;
            case "unsigned_long":
                min = BigDecimal.ZERO;
                max = BigDecimal.valueOf(Long.MAX_VALUE);
                break;
            default:
                min = BigDecimal.valueOf(Long.MIN_VALUE);
                max = BigDecimal.valueOf(Long.MAX_VALUE);
        }
        if (v.compareTo(min) < 0 || v.compareTo(max) > 0) {
            throw new QueryException("Value [" + text + "] is out of range for " + f.type + " field [" + f.name + "]");
        }
        return v.longValueExact();
    }

    private static long clampLong(BigDecimal v) {
        if (v.compareTo(BigDecimal.valueOf(Long.MAX_VALUE)) > 0) {
            return Long.MAX_VALUE;
        }
        if (v.compareTo(BigDecimal.valueOf(Long.MIN_VALUE)) < 0) {
            return Long.MIN_VALUE;
        }
        return v.longValueExact();
    }

    private static final Pattern IPV4 = Pattern.compile("(\\d{1,3})\\.(\\d{1,3})\\.(\\d{1,3})\\.(\\d{1,3})");
    private static final Pattern IPV6 = Pattern.compile("[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*");

    /** An IP literal; never a host name lookup. */
    static InetAddress parseIp(String text) {
        Matcher m4 = IPV4.matcher(text);
        boolean ok = false;
        if (m4.matches()) {
            ok = true;
            for (int i = 1; i <= 4; i++) {
                ok &= Integer.parseInt(m4.group(i)) <= 255;
            }
        } else if (IPV6.matcher(text).matches()) {
            ok = true;
        }
        if (ok) {
            try {
                return InetAddress.getByName(text);
            } catch (UnknownHostException e) {
                ok = false;
            }
        }
        throw new QueryException("'" + text + "' is not an IP string literal.");
    }

    static String parseBoolean(String text) {
        if ("true".equals(text)) {
            return "true";
        }
        if ("false".equals(text) || text.isEmpty()) {
            return "false";
        }
        throw new QueryException("Can't parse boolean value [" + text + "], expected [true] or [false]");
    }

    private static final Pattern DATE = Pattern.compile(
        "(\\d{4})(?:-(\\d{2})(?:-(\\d{2})(?:T(\\d{2})(?::(\\d{2})(?::(\\d{2})(?:[.,](\\d{1,9}))?)?)?)?)?)?"
            + "(Z|[+-]\\d{2}(?::?\\d{2})?)?");
    private static final Pattern EPOCH_MILLIS = Pattern.compile("-?\\d+");

    /**
     * A date as strict_date_optional_time||epoch_millis (Elasticsearch's default date format), as the
     * first and last epoch millisecond it covers: "2024-01-01" covers the whole day (Elasticsearch rounds
     * the missing parts down for gte/gt-exclusive-end and up for lte). Date math ("now-1d") is not supported.
     */
    static long[] parseDate(String text) {
        Matcher m = DATE.matcher(text);
        if (m.matches()) {
            try {
                int year = Integer.parseInt(m.group(1));
                int month = m.group(2) == null ? 1 : Integer.parseInt(m.group(2));
                int lastMonth = m.group(2) == null ? 12 : month;
                int day = m.group(3) == null ? 1 : Integer.parseInt(m.group(3));
                int lastDay = m.group(3) == null ? YearMonth.of(year, lastMonth).lengthOfMonth() : day;
                int hour = m.group(4) == null ? 0 : Integer.parseInt(m.group(4));
                int lastHour = m.group(4) == null ? 23 : hour;
                int minute = m.group(5) == null ? 0 : Integer.parseInt(m.group(5));
                int lastMinute = m.group(5) == null ? 59 : minute;
                int second = m.group(6) == null ? 0 : Integer.parseInt(m.group(6));
                int lastSecond = m.group(6) == null ? 59 : second;
                int nanos = m.group(7) == null ? 0 : Integer.parseInt((m.group(7) + "00000000").substring(0, 9));
                int lastNanos = m.group(7) == null ? 999_999_999 : nanos;
                ZoneOffset zone = m.group(8) == null ? ZoneOffset.UTC : ZoneOffset.of(m.group(8));
                long first = LocalDateTime.of(year, month, day, hour, minute, second, nanos)
                    .toInstant(zone).toEpochMilli();
                long last = LocalDateTime.of(year, lastMonth, lastDay, lastHour, lastMinute, lastSecond, lastNanos)
                    .toInstant(zone).toEpochMilli();
                return new long[] {first, last};
            } catch (java.time.DateTimeException e) {
                throw new QueryException("failed to parse date field [" + text + "]: " + e.getMessage());
            }
        }
        if (EPOCH_MILLIS.matcher(text).matches()) {
            long v = Long.parseLong(text);
            return new long[] {v, v};
        }
        throw new QueryException("failed to parse date field [" + text + "] with format "
            + "[strict_date_optional_time||epoch_millis] (date math is not supported by this engine)");
    }
}
