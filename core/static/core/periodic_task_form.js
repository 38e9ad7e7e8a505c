// django-celery-beat's periodic task page: the chosen crontab in words under its field
// (templates/admin/djcelery/change_periodictask_form.html; a file, not inline, for the CSP).
"use strict";
(function($) {
    $(function() {
        const readableCrontabs = JSON.parse($("#readable-crontabs").text());
        const help = $(".field-crontab .help").first();
        const originalHelp = help.text();
        $(".field-crontab_translation").hide();
        $(".field-crontab").on("change", function() {
            const readable = readableCrontabs[$("#id_crontab").val()];
            // Text, not HTML: the words come from the database.
            help.text(originalHelp);
            if (readable) {
                help.append($("<br>"), document.createTextNode("Translation: " + readable));
            }
        });
    });
})(django.jQuery);
