"""Standard instruments (PHQ-9, GAD-7, PHQ-2, the C-SSRS screener, AHC-HRSN) as FHIR Questionnaires,
responses scored on write into Observations, the rules that revise a plan from the scores, the
measurement-based-care schedule and the safety plan."""
