"""FHIRPath for instruments: SDC's ``weight()`` as a fhirpathpy user function, bound to one
Questionnaire's answer weights, and each calculatedExpression compiled once per Questionnaire
version (the Instrument holds the compiled functions; the cache holds the Instrument).

``weight()`` receives the answers' values without the item they belong to (fhirpathpy hands user
functions plain data), so an instrument gives each answer code one weight: a Questionnaire that
weighs the same code differently in two items is refused when it is written (``weights_of``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

import fhirpathpy
from antlr4 import CommonTokenStream, InputStream, Token  # type: ignore[import-untyped]
from antlr4.error.ErrorListener import ErrorListener  # type: ignore[import-untyped]
from fhirpathpy.models import models
from fhirpathpy.parser.generated.FHIRPathLexer import FHIRPathLexer
from fhirpathpy.parser.generated.FHIRPathParser import FHIRPathParser

from fhir_gateway.assessments._codes import ITEM_WEIGHT, ORDINAL_VALUE
from fhir_gateway.errors import BusinessRule

__all__ = ["ExpressionError", "Compiled", "weight_of", "weights_of", "compile_expression"]

_R4 = models["r4"]
MAX_EXPRESSION = 4000
Compiled = Callable[[Mapping[str, Any], Mapping[str, Any]], list[Any]]
Key = tuple[str | None, str | None]


class ExpressionError(BusinessRule):
    """A Questionnaire expression that does not compile or cannot be evaluated (422)."""


def weight_of(option: Mapping[str, Any]) -> float | None:
    """An answerOption's SDC ``itemWeight`` (or the older ``ordinalValue``), else None."""
    for ext in option.get("extension", []) or []:
        if ext.get("url") in (ITEM_WEIGHT, ORDINAL_VALUE) and "valueDecimal" in ext:
            value = ext["valueDecimal"]
            if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
                return float(value)
    return None


def _key(coding: Mapping[str, Any]) -> Key:
    return (coding.get("system"), coding.get("code"))


def weights_of(items: list[Mapping[str, Any]]) -> dict[Key, float]:
    """(system, code) → weight over the answerOptions of ``items``; one weight per code."""
    table: dict[Key, float] = {}
    for item in items:
        for option in item.get("answerOption", []) or []:
            coding, weight = option.get("valueCoding"), weight_of(option)
            if not isinstance(coding, dict) or weight is None:
                continue
            key = _key(coding)
            if table.get(key, weight) != weight:
                raise ExpressionError(
                    f"Answer {key[1]} carries two different itemWeights: weight() needs one",
                    expression=[f"Questionnaire.item.where(linkId='{item.get('linkId')}')"],
                )
            table[key] = weight
    return table


def _weight_function(table: dict[Key, float]) -> Callable[[list[Any]], list[float]]:
    def weight(inputs: list[Any]) -> list[float]:
        out = []
        for value in inputs:
            if isinstance(value, dict) and (found := table.get(_key(value))) is not None:
                out.append(found)
        return out

    return weight


def _whole(values: list[Any]) -> list[Any]:
    """Whole-number sums as ints (fhirpathpy sums weights as Decimals or floats)."""
    out: list[Any] = []
    for v in values:
        if isinstance(v, float | Decimal) and not isinstance(v, bool) and v == int(v):
            out.append(int(v))
        elif isinstance(v, Decimal):
            out.append(float(v))
        else:
            out.append(v)
    return out


class _Strict(ErrorListener):  # type: ignore[misc]
    def syntaxError(
        self, recognizer: Any, symbol: Any, line: int, column: int, msg: str, e: Any
    ) -> None:
        raise ValueError(f"column {column}: {msg}")


def check_syntax(expression: str) -> None:
    """fhirpathpy's parser recovers from syntax errors silently (``%resource.item.(`` compiles):
    parse once more with a listener that raises, and require the whole text to be read."""
    lexer = FHIRPathLexer(InputStream(expression))
    lexer.removeErrorListeners()
    lexer.addErrorListener(_Strict())
    tokens = CommonTokenStream(lexer)
    parser = FHIRPathParser(tokens)
    parser.removeErrorListeners()
    parser.addErrorListener(_Strict())
    parser.expression()
    if tokens.LA(1) != Token.EOF:
        raise ValueError(f"unexpected {tokens.LT(1).text!r} after the expression")


def compile_expression(expression: str, table: dict[Key, float]) -> Compiled:
    """One calculatedExpression, with ``weight()`` reading ``table``; evaluated with
    ``%resource`` (the response) and ``%questionnaire``."""
    options = {"userInvocationTable": {"weight": {"fn": _weight_function(table)}}}
    if len(expression) > MAX_EXPRESSION:
        raise ExpressionError(f"A calculatedExpression may be at most {MAX_EXPRESSION} characters")
    try:
        check_syntax(expression)
        fn = fhirpathpy.compile(expression, model=_R4, options=options)
    except Exception as exc:  # the parser raises bare Exceptions of several kinds
        raise ExpressionError(f"FHIRPath does not parse: {expression!r}: {exc}") from exc

    def run(response: Mapping[str, Any], variables: Mapping[str, Any]) -> list[Any]:
        try:
            return _whole(list(fn(response, dict(variables))))
        except Exception as exc:
            raise ExpressionError(f"FHIRPath {expression!r} failed: {exc}") from exc

    return run
