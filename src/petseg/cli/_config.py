"""Command-line options built from the library's configuration dataclasses.

One option per dataclass field, so the command line and the library cannot drift apart.
What an option is comes from the dataclass itself:

- its **type** from the field's annotation: ``int``, ``float``, ``str``, ``bool``,
  ``Literal[...]`` (the choices), a tuple of numbers (given comma-separated), ``X | None``;
- its **default** from the field's default (shown in the help, never set by argparse);
- its **help**, **choices** and **metavar** from the field's ``metadata`` (keys
  ``"help"``, ``"choices"``, ``"metavar"``), the help stating units (mm, mL, g/mL).

Every option is added with the argparse default None, so :func:`given_fields` can tell an
option given on the command line from one left out, and :func:`config_from_args` builds
the object from the options given while the others keep the library's defaults. A
boolean field whose default is True becomes a ``--no-...`` switch, one whose default is
False a plain switch (its help, the field's, describes the field when True).

Example (a subcommand module)::

    add_dataclass_options(parser, ExperimentConfig, names={"n_folds": "--folds"})
    ...
    config = config_from_args(args, ExperimentConfig)
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = [
    "add_dataclass_options",
    "call_with_args",
    "config_from_args",
    "given_fields",
    "given_options",
    "option_strings",
    "parse_floats",
]

#: ``names`` values: one option string or several (the first is shown in messages).
OptionNames = Mapping[str, str | tuple[str, ...]]


def parse_floats(text: str, count: int | None, what: str) -> tuple[float, ...]:
    """Parse ``"a,b,c"`` into floats, with an error naming ``what``.

    Parameters
    ----------
    text : str
        Comma-separated numbers.
    count : int or None
        How many numbers are needed (None: one or more).
    what : str
        The option, for the error message.

    Returns
    -------
    tuple of float
    """
    parts = [p for p in text.replace(" ", "").split(",") if p]
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        values = ()
    if not values or (count is not None and len(values) != count):
        needed = f"{count}" if count is not None else "one or more"
        raise argparse.ArgumentTypeError(
            f"{what} needs {needed} comma-separated numbers, got {text!r}"
        )
    return values


def _fields(config: type, names: Iterable[str] | None) -> list[dataclasses.Field[Any]]:
    """The dataclass fields called ``names`` (all init fields when None), in that order."""
    by_name = {f.name: f for f in dataclasses.fields(config) if f.init}
    if names is None:
        return list(by_name.values())
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise ValueError(f"{config.__name__} has no field(s) {unknown}; fields: {list(by_name)}")
    return [by_name[n] for n in names]


def _default(field: dataclasses.Field[Any]) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return None


def option_strings(field: str, default: Any, names: OptionNames | None = None) -> tuple[str, ...]:
    """The option strings of a field: ``names[field]``, else ``--field-name`` (``--no-...``
    for a boolean that defaults to True).

    Parameters
    ----------
    field : str
        Dataclass field name.
    default : any
        The field's default.
    names : mapping of str to str or tuple of str, optional
        Option strings chosen by the command for some fields.

    Returns
    -------
    tuple of str
    """
    if names and field in names:
        given = names[field]
        return (given,) if isinstance(given, str) else tuple(given)
    dashed = field.replace("_", "-")
    return (f"--no-{dashed}",) if default is True else (f"--{dashed}",)


def _show(value: Any) -> str:
    if isinstance(value, tuple | list):
        return ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def _argument_type(hint: Any, option: str) -> tuple[Callable[[str], Any], Any, str | None]:
    """``(type, choices, metavar)`` for argparse from a field's type annotation."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        (inner,) = [a for a in typing.get_args(hint) if a is not type(None)]
        return _argument_type(inner, option)
    if origin is typing.Literal:
        values = typing.get_args(hint)
        return type(values[0]), values, None
    if origin is tuple:
        items = typing.get_args(hint)
        count = None if len(items) == 2 and items[1] is Ellipsis else len(items)
        metavar = "A,B,..." if count is None else ",".join("ABCDEFGH"[:count])
        return (lambda text: parse_floats(text, count, option)), None, metavar
    if hint in (int, float, str):
        return hint, None, None
    raise TypeError(f"{option}: no command-line form for a field of type {hint!r}")


def add_dataclass_options(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    config: type,
    *,
    fields: Iterable[str] | None = None,
    names: OptionNames | None = None,
    help: Mapping[str, str] | None = None,
    choices: Mapping[str, Iterable[Any]] | None = None,
) -> None:
    """Add one option per field of dataclass ``config`` to ``parser``.

    Parameters
    ----------
    parser : argparse.ArgumentParser or argument group
        Where the options go.
    config : dataclass type
        The configuration class (e.g. :class:`petseg.pipeline.SegmentParams`).
    fields : iterable of str, optional
        The fields to expose, in this order (default: every init field).
    names : mapping of str to str or tuple of str, optional
        Option strings for fields whose option is not ``--field-name``.
    help : mapping of str to str, optional
        Help text replacing the field's ``metadata["help"]``, which ``{help}`` in it stands
        for.
    choices : mapping of str to iterable, optional
        Choices replacing those of the annotation or ``metadata["choices"]``.

    Each option's destination is the field name; its value is None when not given.
    """
    hints = typing.get_type_hints(config)
    for field in _fields(config, fields):
        default = _default(field)
        flags = option_strings(field.name, default, names)
        text = field.metadata.get("help", "")
        if help and field.name in help:
            text = help[field.name].replace("{help}", text)
        if default is not None and not isinstance(default, bool) and "default" not in text:
            text = f"{text} (default {_show(default)})".strip()
        if hints[field.name] is bool:
            action = "store_false" if default is True else "store_true"
            text = f"turn off: {text}" if default is True and text else text
            parser.add_argument(*flags, dest=field.name, action=action, default=None, help=text)
            continue
        kind, allowed, metavar = _argument_type(hints[field.name], flags[0])
        if choices and field.name in choices:
            allowed = tuple(choices[field.name])
        elif "choices" in field.metadata:
            allowed = tuple(field.metadata["choices"])
        if allowed is None and metavar is None:
            metavar = flags[0].lstrip("-").upper().replace("-", "_")
        parser.add_argument(
            *flags,
            dest=field.name,
            type=kind,
            choices=allowed,
            metavar=field.metadata.get("metavar", metavar),
            default=None,
            help=text,
        )


def given_fields(
    args: argparse.Namespace, config: type, fields: Iterable[str] | None = None
) -> dict[str, Any]:
    """``{field: value}`` of the options of :func:`add_dataclass_options` given on the
    command line.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed command line.
    config : dataclass type
        The class the options were built from.
    fields : iterable of str, optional
        The fields exposed (default: every init field).

    Returns
    -------
    dict
    """
    return {
        f.name: getattr(args, f.name)
        for f in _fields(config, fields)
        if getattr(args, f.name, None) is not None
    }


def given_options(
    args: argparse.Namespace,
    config: type,
    fields: Iterable[str] | None = None,
    names: OptionNames | None = None,
) -> list[str]:
    """The option strings (as in ``--help``) of the fields given on the command line.

    Parameters
    ----------
    args, config, fields : as for :func:`given_fields`
        The parsed command line, the dataclass and the fields exposed.
    names : mapping of str to str or tuple of str, optional
        The option strings given to :func:`add_dataclass_options`.

    Returns
    -------
    list of str
    """
    given = given_fields(args, config, fields)
    return [
        option_strings(f.name, _default(f), names)[0]
        for f in _fields(config, fields)
        if f.name in given
    ]


def config_from_args(
    args: argparse.Namespace,
    config: type,
    fields: Iterable[str] | None = None,
    **values: Any,
) -> Any:
    """An instance of ``config`` from the options given; the others keep its defaults.

    Parameters
    ----------
    args, config, fields : as for :func:`given_fields`
        The command line parsed by options of ``config``'s ``fields`` (default all).
    **values : any
        Field values decided by the command itself (they win over the options).

    Returns
    -------
    config
        Built (and so validated) by the class.
    """
    return config(**{**given_fields(args, config, fields), **values})


def call_with_args(function: Callable[..., Any], args: argparse.Namespace, **values: Any) -> Any:
    """Call ``function`` with each of its parameters taken from the parsed option of the
    same name; a subcommand names only what it computes or renames.

    Parameters
    ----------
    function : callable
        The library function the subcommand runs.
    args : argparse.Namespace
        The parsed command line; an option's destination is the parameter's name.
    **values : any
        Parameters the subcommand decides itself (they win over the options).

    Returns
    -------
    any
        What ``function`` returns. A parameter that ``values`` does not name and whose
        option was left out (None) keeps the function's default.
    """
    parameters = inspect.signature(function).parameters
    unknown = sorted(set(values) - set(parameters))
    if unknown:
        raise TypeError(f"{function.__name__}() takes no parameter(s) {unknown}")
    positional: list[Any] = []
    keywords: dict[str, Any] = {}
    for name, parameter in parameters.items():
        if name in values:
            value = values[name]
        elif getattr(args, name, None) is not None:
            value = getattr(args, name)
        else:
            continue
        if parameter.kind is inspect.Parameter.POSITIONAL_ONLY:
            positional.append(value)
        else:
            keywords[name] = value
    return function(*positional, **keywords)
