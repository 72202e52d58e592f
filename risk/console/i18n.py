"""The console's words in Russian (the default) and English.

A page's language comes from ``?lang=`` (remembered in a cookie), then the cookie, then
Russian. Reasons are shown as scoring wrote them.
"""

from __future__ import annotations

from collections.abc import Callable

LANGUAGES = ("ru", "en")
DEFAULT_LANGUAGE = "ru"

MESSAGES: dict[str, dict[str, str]] = {
    "app_title": {"ru": "Риск-консоль таможенного поста", "en": "Customs risk console"},
    "nav_queue": {"ru": "Очередь", "en": "Queue"},
    "nav_dashboard": {"ru": "Показатели", "en": "Dashboard"},
    "nav_audit": {"ru": "Журнал", "en": "Audit log"},
    "nav_api": {"ru": "API", "en": "API"},
    "logout": {"ru": "Выйти", "en": "Log out"},
    "login_title": {"ru": "Вход для инспекторов", "en": "Officers' log-in"},
    "username": {"ru": "Имя пользователя", "en": "User name"},
    "password": {"ru": "Пароль", "en": "Password"},
    "login": {"ru": "Войти", "en": "Log in"},
    "login_failed": {
        "ru": "Неверное имя пользователя или пароль.",
        "en": "Wrong user name or password.",
    },
    "role_officer": {"ru": "инспектор", "en": "officer"},
    "role_supervisor": {"ru": "старший инспектор", "en": "supervisor"},
    "role_analyst": {"ru": "аналитик", "en": "analyst"},
    "queue_title": {"ru": "Очередь пункта пропуска", "en": "Crossing queue"},
    "crossing": {"ru": "Пункт пропуска", "en": "Crossing"},
    "all_crossings": {"ru": "Все пункты", "en": "All crossings"},
    "lane": {"ru": "Коридор", "en": "Lane"},
    "all_lanes": {"ru": "Все коридоры", "en": "All lanes"},
    "show": {"ru": "Показать", "en": "Show"},
    "lane_red": {"ru": "красный", "en": "red"},
    "lane_yellow": {"ru": "жёлтый", "en": "yellow"},
    "lane_green": {"ru": "зелёный", "en": "green"},
    "lane_blue": {"ru": "синий", "en": "blue"},
    "lane_red_hint": {"ru": "досмотр", "en": "inspection"},
    "lane_yellow_hint": {"ru": "проверка документов", "en": "document check"},
    "lane_green_hint": {"ru": "выпуск", "en": "release"},
    "lane_blue_hint": {"ru": "после выпуска", "en": "post-clearance"},
    "truck": {"ru": "Грузовик", "en": "Truck"},
    "plate": {"ru": "Госномер", "en": "Plate"},
    "risk": {"ru": "Риск", "en": "Risk"},
    "duty_at_risk": {"ru": "Пошлины под риском", "en": "Duty at risk"},
    "random": {"ru": "Случайный отбор", "en": "Random pick"},
    "random_short": {"ru": "случайный", "en": "random"},
    "waiting": {"ru": "Ожидание", "en": "Waiting"},
    "items": {"ru": "Товаров", "en": "Items"},
    "decided_by": {"ru": "Кем назначен", "en": "Set by"},
    "decided_model": {"ru": "модель", "en": "model"},
    "decided_rule": {"ru": "правило", "en": "rule"},
    "decided_random": {"ru": "случайный отбор", "en": "random share"},
    "decided_override": {"ru": "старший инспектор", "en": "supervisor"},
    "queue_empty": {
        "ru": "В очереди нет грузовиков по этому фильтру.",
        "en": "No trucks in the queue for this filter.",
    },
    "refreshes": {
        "ru": "Обновляется автоматически каждые {seconds} с.",
        "en": "Refreshes itself every {seconds} s.",
    },
    "updated_at": {"ru": "Обновлено", "en": "Updated"},
    "arrived": {"ru": "Прибыл", "en": "Arrived"},
    "status": {"ru": "Статус", "en": "Status"},
    "status_waiting": {"ru": "ожидает", "en": "waiting"},
    "status_inspected": {"ru": "досмотрен", "en": "inspected"},
    "model_version": {"ru": "Версия модели", "en": "Model version"},
    "reasons": {"ru": "Почему отобран", "en": "Why flagged"},
    "no_reasons": {
        "ru": "Причин нет: модель не видит повышенного риска.",
        "en": "No reasons: the model sees no raised risk.",
    },
    "declarations": {"ru": "Декларации", "en": "Declarations"},
    "declaration": {"ru": "Декларация", "en": "Declaration"},
    "declared_at": {"ru": "Подана", "en": "Filed"},
    "importer": {"ru": "Импортёр", "en": "Importer"},
    "registered_on": {"ru": "зарегистрирован", "en": "registered"},
    "declarant": {"ru": "Декларант", "en": "Declarant"},
    "procedure": {"ru": "Процедура", "en": "Procedure"},
    "track_record": {"ru": "История проверок импортёра", "en": "Importer's track record"},
    "tr_inspected": {"ru": "проверено деклараций", "en": "declarations inspected"},
    "tr_violations": {"ru": "нарушений", "en": "violations"},
    "tr_hit_rate": {"ru": "доля нарушений", "en": "hit rate"},
    "tr_extra_duty": {"ru": "доначислено", "en": "extra duty"},
    "tr_last_violation": {"ru": "последнее нарушение", "en": "last violation"},
    "tr_none": {"ru": "проверок ещё не было", "en": "never inspected"},
    "hs_code": {"ru": "Код ТН ВЭД", "en": "HS code"},
    "goods": {"ru": "Товар", "en": "Goods"},
    "origin": {"ru": "Происхождение / отправление", "en": "Origin / dispatch"},
    "net_gross": {"ru": "Нетто / брутто, кг", "en": "Net / gross, kg"},
    "value": {"ru": "Стоимость, USD", "en": "Value, USD"},
    "usd_per_kg": {"ru": "USD/кг", "en": "USD/kg"},
    "duty_rate": {"ru": "Ставка", "en": "Rate"},
    "record_result": {"ru": "Результат досмотра", "en": "Inspection result"},
    "correct_result": {"ru": "Исправить результат", "en": "Correct the result"},
    "result": {"ru": "Результат", "en": "Result"},
    "result_clean": {"ru": "нарушений не выявлено", "en": "clean"},
    "result_undervaluation": {"ru": "занижение стоимости", "en": "undervaluation"},
    "result_reexport": {"ru": "реэкспорт через третью страну", "en": "re-export"},
    "result_cargo_consolidation": {"ru": "«карго»-консолидация", "en": "cargo consolidation"},
    "result_transit_diversion": {"ru": "уклонение от транзита", "en": "transit diversion"},
    "result_misclassification": {"ru": "неверный код ТН ВЭД", "en": "misclassification"},
    "result_false_origin": {"ru": "ложное происхождение", "en": "false origin"},
    "result_one_day_firm": {"ru": "фирма-однодневка", "en": "one-day firm"},
    "result_weight_misdeclaration": {"ru": "недостоверный вес", "en": "weight misdeclaration"},
    "result_splitting": {"ru": "дробление партии", "en": "splitting"},
    "result_other": {"ru": "иное нарушение", "en": "other violation"},
    "violation_in": {"ru": "Нарушение в декларации", "en": "Violation in declaration"},
    "whole_truck": {"ru": "весь грузовик", "en": "the whole truck"},
    "extra_duty": {"ru": "Доначислено пошлин, USD", "en": "Extra duty, USD"},
    "notes": {"ru": "Примечания", "en": "Notes"},
    "save_result": {"ru": "Сохранить результат", "en": "Save result"},
    "result_saved": {"ru": "Результат сохранён.", "en": "Result saved."},
    "green_no_result": {
        "ru": "Грузовик в зелёном коридоре выпущен без досмотра. Чтобы досмотреть его, "
        "старший инспектор должен сменить коридор.",
        "en": "A green-lane truck is released uninspected. To inspect it, a supervisor must "
        "change its lane first.",
    },
    "override": {"ru": "Сменить коридор", "en": "Override the lane"},
    "override_reason": {"ru": "Основание (обязательно)", "en": "Reason (required)"},
    "override_saved": {"ru": "Коридор изменён.", "en": "Lane changed."},
    "new_lane": {"ru": "Новый коридор", "en": "New lane"},
    "conflict": {
        "ru": "Пока вы смотрели эту страницу, грузовик {truck} изменил(а) {actor} в {at}. "
        "Ваши данные не сохранены: проверьте изменения ниже и сохраните снова, если нужно.",
        "en": "While you had this page open, truck {truck} was changed by {actor} at {at}. "
        "Nothing of yours was saved: check the change below and save again if needed.",
    },
    "history": {"ru": "История решений по грузовику", "en": "Decisions on this truck"},
    "audit_title": {"ru": "Журнал решений", "en": "Audit log"},
    "audit_note": {
        "ru": "Журнал только пополняется: записи нельзя изменить или удалить.",
        "en": "The log is append-only: entries cannot be changed or deleted.",
    },
    "when": {"ru": "Когда (UTC)", "en": "When (UTC)"},
    "who": {"ru": "Кто", "en": "Who"},
    "action": {"ru": "Действие", "en": "Action"},
    "all_actions": {"ru": "Все действия", "en": "All actions"},
    "details": {"ru": "Подробности", "en": "Details"},
    "action_lane_assigned": {"ru": "назначен коридор", "en": "lane assigned"},
    "action_lane_overridden": {"ru": "коридор изменён", "en": "lane overridden"},
    "action_result_recorded": {"ru": "записан результат", "en": "result recorded"},
    "action_user_added": {"ru": "добавлен пользователь", "en": "user added"},
    "action_token_added": {"ru": "выдан API-токен", "en": "API token issued"},
    "older": {"ru": "Ранее →", "en": "Older →"},
    "dashboard_title": {"ru": "Показатели работы", "en": "Performance"},
    "trucks_total": {"ru": "Грузовиков в системе", "en": "Trucks in the system"},
    "share_inspected": {"ru": "Доля досмотренных", "en": "Share inspected"},
    "share_planned": {"ru": "Назначено к проверке", "en": "Planned for checks"},
    "hit_rate": {"ru": "Результативность:", "en": "Hit rate:"},
    "hit_targeted": {"ru": "модель", "en": "model"},
    "hit_random": {"ru": "случайный отбор", "en": "random share"},
    "hit_rule": {"ru": "правила и ручные решения", "en": "rules and overrides"},
    "duty_recovered": {"ru": "Доначислено пошлин", "en": "Duty recovered"},
    "overrides": {"ru": "Ручные изменения коридора", "en": "Manual overrides"},
    "lane_to_result": {"ru": "От назначения до результата", "en": "Lane to result"},
    "minutes": {"ru": "мин", "en": "min"},
    "chart_lanes": {"ru": "Грузовики по коридорам", "en": "Trucks by lane"},
    "chart_hits": {
        "ru": "Доля нарушений среди досмотренных",
        "en": "Violations among inspected trucks",
    },
    "chart_results": {"ru": "Результаты досмотров", "en": "Inspection results"},
    "no_data": {"ru": "Пока нет данных.", "en": "No data yet."},
    "inspections_n": {"ru": "досмотров", "en": "inspections"},
    "forbidden": {"ru": "Недостаточно прав", "en": "Not allowed"},
    "csrf_failed": {
        "ru": "Форма устарела или пришла не с этой страницы (нет CSRF-токена). Обновите "
        "страницу и повторите.",
        "en": "The form is stale or did not come from this site (CSRF token missing). Reload "
        "the page and try again.",
    },
    "not_found": {"ru": "Не найдено", "en": "Not found"},
    "back_to_queue": {"ru": "← К очереди", "en": "← Back to the queue"},
    "error": {"ru": "Ошибка", "en": "Error"},
    "yes": {"ru": "да", "en": "yes"},
    "no": {"ru": "нет", "en": "no"},
    "days_short": {"ru": "д", "en": "d"},
    "hours_short": {"ru": "ч", "en": "h"},
    "minutes_short": {"ru": "мин", "en": "min"},
    "signed_in_as": {"ru": "Вы вошли как", "en": "Signed in as"},
    "procedure_import": {"ru": "импорт", "en": "import"},
    "procedure_transit": {"ru": "транзит", "en": "transit"},
    "procedure_eaeu_internal": {"ru": "внутри ЕАЭС", "en": "EAEU internal"},
    "actor_cli": {"ru": "администратор (CLI)", "en": "administrator (CLI)"},
}


def translator(lang: str) -> Callable[..., str]:
    """``t(key, **values)`` for one language; an unknown key shows itself (easy to spot)."""
    language = lang if lang in LANGUAGES else DEFAULT_LANGUAGE

    def t(key: str, **values: object) -> str:
        text = MESSAGES.get(key, {}).get(language, key)
        return text.format(**values) if values else text

    return t
