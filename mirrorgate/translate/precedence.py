"""ONE sort key for Gateway API match precedence (``HTTPRouteRule.Matches`` doc comment).

Within the routes of one virtual host (hostname precedence decided which host applies, §1.2),
the first criterion that differs decides:

1. an Exact path match;
2. a PathPrefix match with the most characters;
3. a method match;
4. the largest number of header matches;
5. the largest number of query-param matches;
6. the oldest route by creationTimestamp;
7. ``{namespace}/{name}`` alphabetically;
8. the first rule in list order (then the first match).

RegularExpression precedence is ours to define: a regex match ranks after Exact and before every
PathPrefix match, longer patterns first (as Envoy Gateway orders them).
"""

from mirrorgate.model.httproute import HTTPRoute, HTTPRouteMatch

_RANK = {"Exact": 0, "RegularExpression": 1, "PathPrefix": 2}


PrecedenceKey = tuple[int, int, int, int, int, str, str, str, int, int]


def precedence_key(route: HTTPRoute, rule_index: int, match_index: int, match: HTTPRouteMatch) -> PrecedenceKey:
    """Smaller sorts first (wins)."""
    path = match.path
    return (
        _RANK.get(path.type, 3),
        -len(path.value),
        0 if match.method else 1,
        -len(match.headers),
        -len(match.query_params),
        route.metadata.creation_timestamp,
        route.metadata.namespace,
        route.metadata.name,
        rule_index,
        match_index,
    )
