"""``fer-ensemble``: one model folder that averages several trained model folders.

Example:
    fer-ensemble models/a models/b --data data/fer2013-clean --out models/best_model --tta flip
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from fer_keras.cli import _common
from fer_keras.model.model_folder import TTA_CHOICES


def build_parser() -> argparse.ArgumentParser:
    p = _common.parser(
        "fer-ensemble",
        "Write one model folder whose model returns the mean of the class probabilities of 2-8 model folders "
        "(same classes, input, colour mode and crop rule; an ensemble folder given as a member adds each of its "
        "members, so an ensemble grows by one model). Every member and the ensemble are measured on "
        "DATA/valid with the same test-time augmentation (recorded in the metadata, so the gain is on record); "
        "DATA/test is evaluated once, for the ensemble, afterwards. fer-predict, fer-serve, fer-eval and "
        "fer-export run the folder like any other.",
    )
    p.add_argument(
        "members",
        nargs="+",
        metavar="MODEL_DIR",
        help="member model folders (an ensemble folder adds each of its members)",
    )
    p.add_argument("--out", required=True, metavar="DIR", help="the ensemble's model folder")
    p.add_argument("--data", required=True, metavar="DIR", help="dataset folder with valid/ (and test/)")
    p.add_argument("--name", help="the ensemble's name (default: the --out folder's name)")
    p.add_argument(
        "--tta", action="append", choices=TTA_CHOICES, default=[], help="test-time augmentation (repeatable)"
    )
    p.add_argument(
        "--class-prior",
        metavar="auto|TAU",
        help="class-prior correction (logit adjustment) of the final probabilities, recorded for inference: "
        "'auto' chooses tau in 0..1 on DATA/valid (mean of accuracy and macro-F1), or give tau; off by default",
    )
    p.add_argument("--no-test", action="store_true", help="skip the one-time test-split evaluation")
    p.add_argument(
        "--reproduce", metavar="COMMANDS", help="the commands that reproduce the members and the ensemble (metadata)"
    )
    p.add_argument("--dry-run", action="store_true", help="validate and show what would be written; load no model")
    return p


def handle(args: argparse.Namespace) -> int:
    from fer_keras.model.class_prior import class_prior_from_text, describe_record
    from fer_keras.training.ensemble import export_ensemble, plan_ensemble

    plan = plan_ensemble(
        args.members,
        args.out,
        args.data,
        name=args.name,
        tta=args.tta,
        evaluate_test=not args.no_test,
        class_prior=class_prior_from_text(args.class_prior),
    )
    tta = ", ".join(plan.tta) or "none"
    if args.dry_run:
        names = ", ".join(f"{m.name} ({m.path})" for m in plan.parts)
        print(f"would write ensemble {plan.name!r} of {len(plan.parts)} models to {plan.out}: {names}")
        prior = "" if plan.class_prior is None else f", class-prior correction {plan.class_prior}"
        print(
            f"measured on {plan.data / 'valid'} with TTA {tta}{prior}" + ("; test once" if plan.evaluate_test else "")
        )
        return 0
    meta = export_ensemble(plan, quiet=args.quiet, reproduce=args.reproduce)
    for member in meta["ensemble"]["members"]:
        print(f"valid {member['name']}: {_scores(member['valid_metrics'])}")
    if meta["class_prior"]:
        print(describe_record(meta["class_prior"]))
    print(f"valid ensemble: {_scores(meta['valid_metrics'])}  (TTA {tta})")
    if meta["test_metrics"]:
        print(f"test ensemble: {_scores(meta['test_metrics'])}")
    print(f"wrote {plan.out}")
    return 0


def _scores(metrics: dict) -> str:
    return f"accuracy {metrics['accuracy']:.2%}, macro-F1 {metrics['macro_f1']:.2%}"


def main(argv: Sequence[str] | None = None) -> int:
    return _common.run(build_parser(), handle, argv)


if __name__ == "__main__":
    sys.exit(main())
